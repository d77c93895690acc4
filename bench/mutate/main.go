// Command mutate is a mutation pass over the decision files (the pure
// functions that choose what the group, the heal policy, remediation,
// runbook resumption, the load balancer's eviction and alarm evaluation
// do). Each mutant in bench/mutate/mutants.txt changes one rule (reverses
// a comparison, moves a threshold by one, drops a condition, swaps an
// order, returns the other branch's value); the pass applies it, runs only
// that package's unit tests, records whether a test failed (the mutant is
// killed) and which, and puts the file back. A surviving mutant is a rule
// no test pins, unless mutants.txt marks it equivalent with the reason.
//
// Run it with bench/mutate.sh from the repository's root; -only selects
// mutants by id or file (a regular expression), -o writes the table.
//
// The file is put back from the bytes read before the mutant, after every
// run and on SIGINT or SIGTERM; the pass refuses to start when a mutated
// file has uncommitted changes, so putting it back is git checkout -- file.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// mutant is one change to one rule.
type mutant struct {
	ID         string
	File       string // relative to the repository's root
	Line       int    // where Original starts
	Original   string
	Mutated    string
	Desc       string
	Equivalent string // why no test can tell it apart ("" when one must)
	Run        string // -run pattern of the package's unit tests
	Src        int    // line in mutants.txt
}

// outcome is what running the tests against a mutant gave.
type outcome struct {
	Result string // killed, survived, timeout, build-error, stale
	Test   string // the first failing test (killed)
	Detail string
}

func main() {
	list := flag.String("list", "bench/mutate/mutants.txt", "the mutants")
	only := flag.String("only", "", "run only the mutants whose id or file matches this regular expression")
	out := flag.String("o", "", "also write the markdown table to this file")
	timeout := flag.Duration("timeout", 2*time.Minute, "per mutant test timeout")
	flag.Parse()
	ms, err := parse(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mutate: -only:", err)
			os.Exit(2)
		}
		var sel []mutant
		for _, m := range ms {
			if re.MatchString(m.ID) || re.MatchString(m.File) {
				sel = append(sel, m)
			}
		}
		ms = sel
	}
	// Two passes at once would test each other's mutants: a package's tests
	// compile against whatever its dependencies look like at that moment.
	lock, err := os.Open(*list)
	if err == nil {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate: another pass is running in this tree:", err)
		os.Exit(2)
	}
	if err := clean(ms); err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	os.Exit(pass(ms, *out, *timeout))
}

// pass runs every mutant and prints the table; its exit code is 1 when a
// mutant that is not marked equivalent survived, a marked one was killed,
// or a mutant could not be applied or built.
func pass(ms []mutant, out string, timeout time.Duration) int {
	r := newRestorer()
	defer r.restore()
	var rows []string
	var killed, equiv, bad int
	start := time.Now()
	for i, m := range ms {
		o := r.run(m, timeout)
		var res string
		switch {
		case o.Result == "killed" || o.Result == "timeout":
			if m.Equivalent != "" {
				res, bad = "KILLED BUT MARKED EQUIVALENT", bad+1
			} else {
				killed++
				res = "killed by " + o.Test
			}
		case o.Result == "survived" && m.Equivalent != "":
			equiv++
			res = "equivalent: " + m.Equivalent
		default:
			bad++
			res = strings.ToUpper(o.Result)
			if o.Detail != "" {
				res += ": " + o.Detail
			}
		}
		row := fmt.Sprintf("| %s | %s:%d | %s | %s |", m.ID, m.File, m.Line, escape(m.Desc), escape(res))
		rows = append(rows, row)
		fmt.Fprintf(os.Stderr, "[%d/%d] %s\n", i+1, len(ms), row)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| id | file:line | mutant | result |\n|---|---|---|---|\n")
	for _, row := range rows {
		b.WriteString(row + "\n")
	}
	fmt.Fprintf(&b, "\n%d mutants: %d killed, %d equivalent, %d not accounted for (%s).\n",
		len(ms), killed, equiv, bad, time.Since(start).Round(time.Second))
	fmt.Print(b.String())
	if out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "mutate:", err)
			return 2
		}
	}
	if bad > 0 {
		return 1
	}
	return 0
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// restorer puts a mutated file back, after each run and on a signal.
type restorer struct {
	mu       sync.Mutex
	file     string // the file mutated now ("" when none)
	original []byte
}

func newRestorer() *restorer {
	r := &restorer{}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		r.restore()
		fmt.Fprintf(os.Stderr, "mutate: %s: file restored, stopping\n", s)
		os.Exit(130)
	}()
	return r
}

func (r *restorer) restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file == "" {
		return
	}
	if err := os.WriteFile(r.file, r.original, 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "mutate: restore %s: %v (run git checkout -- %s)\n", r.file, err, r.file)
	}
	r.file, r.original = "", nil
}

// run applies m, runs its package's unit tests and restores the file.
func (r *restorer) run(m mutant, timeout time.Duration) outcome {
	src, err := os.ReadFile(m.File)
	if err != nil {
		return outcome{Result: "stale", Detail: err.Error()}
	}
	mutated, err := apply(src, m)
	if err != nil {
		return outcome{Result: "stale", Detail: err.Error()}
	}
	r.mu.Lock()
	r.file, r.original = m.File, src
	err = os.WriteFile(m.File, mutated, 0o644)
	r.mu.Unlock()
	defer r.restore()
	if err != nil {
		return outcome{Result: "stale", Detail: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+30*time.Second)
	defer cancel()
	pkg := "./" + filepath.Dir(m.File) + "/"
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-timeout", timeout.String(), "-run", m.Run, pkg)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	return classify(err, buf.String())
}

// classify reads go test's verdict.
func classify(err error, out string) outcome {
	switch {
	case err == nil:
		return outcome{Result: "survived"}
	case strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]"):
		return outcome{Result: "build-error", Detail: firstLine(out)}
	case strings.Contains(out, "panic: test timed out"):
		return outcome{Result: "timeout", Test: "timeout (" + failing(out) + ")"}
	}
	return outcome{Result: "killed", Test: failing(out)}
}

// failing is the first failing test, its first failing subtest when it has
// one, noting when a test panicked (the first failing test may be another).
func failing(out string) string {
	var top, sub string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		name, ok := strings.CutPrefix(line, "--- FAIL: ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		switch {
		case top == "":
			top = name
		case sub == "" && strings.HasPrefix(name, top+"/"):
			sub = name
		}
	}
	name := top
	if sub != "" {
		name = sub
	}
	if name == "" {
		name = "? (" + firstLine(out) + ")"
	}
	if strings.Contains(out, "\npanic: ") {
		name += " (a test panicked)"
	}
	return name
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}

// apply replaces m.Original, which must start on line m.Line exactly once,
// with m.Mutated.
func apply(src []byte, m mutant) ([]byte, error) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	if m.Line < 1 || m.Line > len(lines) {
		return nil, fmt.Errorf("no line %d", m.Line)
	}
	start := 0
	for _, l := range lines[:m.Line-1] {
		start += len(l)
	}
	end := start + len(lines[m.Line-1])
	var at []int
	for i := start; i < end; i++ {
		if bytes.HasPrefix(src[i:], []byte(m.Original)) {
			at = append(at, i)
		}
	}
	if len(at) != 1 {
		return nil, fmt.Errorf("%q starts %d times on line %d, want once", m.Original, len(at), m.Line)
	}
	var b bytes.Buffer
	b.Write(src[:at[0]])
	b.WriteString(m.Mutated)
	b.Write(src[at[0]+len(m.Original):])
	return b.Bytes(), nil
}

// clean refuses to mutate a file with uncommitted changes: restoring the
// bytes read must be the same as git checkout -- file.
func clean(ms []mutant) error {
	seen := map[string]bool{}
	var files []string
	for _, m := range ms {
		if !seen[m.File] {
			seen[m.File] = true
			files = append(files, m.File)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return fmt.Errorf("no mutants selected")
	}
	cmd := exec.Command("git", append([]string{"diff", "--quiet", "HEAD", "--"}, files...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("uncommitted changes in %s (or not a git repository): commit or stash them first: %v", strings.Join(files, " "), err)
	}
	return nil
}

// parse reads the list. Its lines are
//
//	run DIR PATTERN            the -run pattern of DIR's unit tests
//	file PATH                  the file the next mutants change
//	LINE: ORIGINAL ==> MUTATED ## DESCRIPTION [## equivalent: WHY]
//
// ORIGINAL and MUTATED are Go text, with \n for a line break and \t for
// a tab (a mutant that spans lines, such as swapping two). Blank lines and lines starting
// with # are ignored.
func parse(path string) ([]mutant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseFrom(path, f)
}

func parseFrom(path string, rd io.Reader) ([]mutant, error) {
	runs := map[string]string{}
	var ms []mutant
	file := ""
	perFile := map[string]int{}
	sc := bufio.NewScanner(rd)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		bad := func(what string) error { return fmt.Errorf("%s:%d: %s: %q", path, n, what, line) }
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		case strings.HasPrefix(line, "run "):
			f := strings.Fields(line)
			if len(f) != 3 {
				return nil, bad("want run DIR PATTERN")
			}
			runs[filepath.Clean(f[1])] = f[2]
			continue
		case strings.HasPrefix(line, "file "):
			file = filepath.Clean(strings.TrimSpace(strings.TrimPrefix(line, "file ")))
			if _, ok := runs[filepath.Dir(file)]; !ok {
				return nil, bad("no run line for " + filepath.Dir(file))
			}
			continue
		}
		if file == "" {
			return nil, bad("mutant before any file line")
		}
		num, rest, ok := strings.Cut(line, ": ")
		ln, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, bad("want LINE: ORIGINAL ==> MUTATED ## DESCRIPTION")
		}
		orig, rest, ok := strings.Cut(rest, " ==> ")
		if !ok {
			return nil, bad("no ' ==> '")
		}
		// " ## " after an empty MUTATED (a dropped condition) follows " ==> " at once.
		parts := strings.Split(" "+rest, " ## ")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, bad("want MUTATED ## DESCRIPTION [## equivalent: WHY]")
		}
		m := mutant{File: file, Line: ln, Original: unescape(orig), Mutated: unescape(strings.TrimSpace(parts[0])),
			Desc: strings.TrimSpace(parts[1]), Run: runs[filepath.Dir(file)], Src: n}
		if len(parts) == 3 {
			why, ok := strings.CutPrefix(strings.TrimSpace(parts[2]), "equivalent: ")
			if !ok {
				return nil, bad("the third field must start with 'equivalent: '")
			}
			m.Equivalent = why
		}
		perFile[file]++
		m.ID = fmt.Sprintf("%s#%d", strings.TrimSuffix(filepath.Base(file), ".go"), perFile[file])
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

func unescape(s string) string { return strings.NewReplacer(`\n`, "\n", `\t`, "\t").Replace(s) }
