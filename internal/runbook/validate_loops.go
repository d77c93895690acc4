package runbook

import (
	"fmt"
	"slices"
	"strings"
)

// loops reports every loop of steps from which the execution cannot reach
// an end.
//
// The rule. Steps are the nodes of a graph with one more node, the end.
// A step leads, when it succeeds, to
//   - the end if it has isEnd: true;
//   - else its nextStep, if it has one;
//   - else the step after it in mainSteps, or the end if it is the last;
//   - for a branch: the NextStep of each choice, and its Default; with no
//     Default, where it would lead as any other step (SSM runs the next
//     step when no choice matches and there is no Default).
//
// and, when it fails, with onFailure: Continue, where it leads when it
// succeeds; with onFailure: step:NAME, to NAME. onFailure: Abort (the
// default) ends the execution as failed: that is not counted as a way out,
// or every loop would have one, and a loop that only stops when a step
// fails runs forever when all goes well. onCancel is not counted either: a
// cancellation comes from outside.
//
// A loop is fine as long as some path leaves it for the end: polling, a
// branch that stops retrying, a failure handler. A loop with no path to
// the end is reported once, at the step of the loop written first, with
// the shortest cycle through that step. Steps that only lead into such a
// loop are not reported: fixing the loop fixes them.
func (v *validator) loops() {
	steps := v.doc.MainSteps
	n := len(steps)
	if n == 0 {
		return
	}
	end := n
	succ := make([][]int, n)
	for i := range steps {
		succ[i] = v.successors(i)
	}
	// Which steps can reach the end: a walk back from it.
	pred := make([][]int, n+1)
	for i, ss := range succ {
		for _, j := range ss {
			pred[j] = append(pred[j], i)
		}
	}
	canEnd := make([]bool, n+1)
	canEnd[end] = true
	queue := []int{end}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		for _, i := range pred[j] {
			if !canEnd[i] {
				canEnd[i] = true
				queue = append(queue, i)
			}
		}
	}
	// Every step that cannot reach the end leads only to steps that
	// cannot either, so it is in a loop or leads into one. The loops are
	// the strongly connected components of those steps that have a cycle.
	trapped := func(i int) bool { return i < n && !canEnd[i] }
	for _, comp := range components(n, succ, trapped) {
		first := slices.Min(comp)
		cycle := shortestCycle(first, succ, func(i int) bool { return slices.Contains(comp, i) })
		if cycle == nil {
			continue // a single step that does not lead to itself
		}
		names := make([]string, len(cycle))
		for k, i := range cycle {
			names[k] = steps[i].Name
			if names[k] == "" {
				names[k] = fmt.Sprintf("#%d", i+1)
			}
		}
		if len(names) > 12 {
			names = append(names[:10:10], fmt.Sprintf("... (%d steps)", len(cycle)-1), names[len(names)-1])
		}
		v.p.errorf(v.p.steps[first].item, "steps loop without end: %s; no path leaves the loop for an end (isEnd: true, or the last step); leave it with a branch, or with onFailure: step:NAME or Continue", strings.Join(names, " -> "))
	}
}

// successors returns the steps (n for the end) step i may lead to, as
// described on loops.
func (v *validator) successors(i int) []int {
	steps := v.doc.MainSteps
	n := len(steps)
	s := steps[i]
	idx := func(name string) int {
		if j := v.stepIndex(name); j >= 0 {
			return j
		}
		return n // an unknown step, reported already: taken as an end so as not to report a loop
	}
	fall := n
	switch {
	case s.IsEnd:
	case s.NextStep != "":
		fall = idx(s.NextStep)
	case i+1 < n:
		fall = i + 1
	}
	var out []int
	if s.Action == ActionBranch {
		choices, _ := s.Inputs["Choices"].([]any)
		for _, c := range choices {
			if m, ok := c.(map[string]any); ok {
				if next, ok := m["NextStep"].(string); ok {
					out = append(out, idx(next))
				}
			}
		}
		if def, ok := s.Inputs["Default"]; ok && def != nil {
			name, _ := def.(string)
			out = append(out, idx(name))
		} else {
			out = append(out, fall)
		}
	} else {
		out = append(out, fall)
	}
	switch name, ok := strings.CutPrefix(s.OnFailure, "step:"); {
	case ok:
		out = append(out, idx(name))
	case s.OnFailure == OnFailureContinue:
		out = append(out, fall)
	}
	return out
}

// components returns the strongly connected components (Tarjan's
// algorithm) of the graph of the nodes below n for which in is true.
func components(n int, succ [][]int, in func(int) bool) [][]int {
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var comps [][]int
	next := 0
	var visit func(int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range succ[v] {
			if !in(w) {
				continue
			}
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			comps = append(comps, comp)
		}
	}
	for v := range n {
		if in(v) && index[v] < 0 {
			visit(v)
		}
	}
	return comps
}

// shortestCycle returns the shortest path from start back to itself
// through nodes for which in is true, start first and last, or nil.
func shortestCycle(start int, succ [][]int, in func(int) bool) []int {
	parent := map[int]int{}
	queue := []int{start}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range succ[v] {
			if w == start {
				path := []int{start}
				for u := v; u != start; u = parent[u] {
					path = append(path, u)
				}
				path = append(path, start)
				slices.Reverse(path)
				return path
			}
			if _, seen := parent[w]; seen || !in(w) {
				continue
			}
			parent[w] = v
			queue = append(queue, w)
		}
	}
	return nil
}
