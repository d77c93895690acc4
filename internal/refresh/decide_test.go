package refresh

import (
	"strings"
	"testing"
)

func ins(spec string) []Instance {
	// "o+ o- n+ n- t o" : old/new, healthy (+) or not (-); t terminating (old).
	var out []Instance
	for i, f := range strings.Fields(spec) {
		in := Instance{ID: string(rune('a' + i))}
		switch f {
		case "o+":
			in.Old, in.Healthy = true, true
		case "o-":
			in.Old = true
		case "n+":
			in.Healthy = true
		case "n-":
		case "t":
			in.Old, in.Terminating = true, true
		}
		out = append(out, in)
	}
	return out
}

func TestDecide(t *testing.T) {
	def := Settings{MinHealthyPercentage: 90, MaxUnavailable: 1}
	half := Settings{MinHealthyPercentage: 50, MaxUnavailable: 2}
	cases := []struct {
		name    string
		desired int
		s       Settings
		spec    string
		want    string // terminated ids, "done", or "wait"
	}{
		{"three old, one at a time at 66%", 3, Settings{MinHealthyPercentage: 66, MaxUnavailable: 1}, "o+ o+ o+", "a"},
		{"90% of three keeps all three: nothing", 3, def, "o+ o+ o+", "wait"},
		{"one terminating: wait", 3, Settings{MinHealthyPercentage: 66, MaxUnavailable: 1}, "t o+ o+", "wait"},
		{"its successor starting: wait", 3, Settings{MinHealthyPercentage: 66, MaxUnavailable: 1}, "n- o+ o+", "wait"},
		{"its successor healthy: the next", 3, Settings{MinHealthyPercentage: 66, MaxUnavailable: 1}, "n+ o+ o+", "b"},
		{"two at a time at 50% of four", 4, half, "o+ o+ o+ o+", "a b"},
		{"an unhealthy old one waits for health", 3, Settings{MinHealthyPercentage: 0, MaxUnavailable: 1}, "o- n+ n+", "wait"},
		{"all new and healthy: done", 3, def, "n+ n+ n+", "done"},
		{"all new, one not healthy yet: wait", 3, def, "n+ n+ n-", "wait"},
		{"a group of one is replaced whatever the percentage", 1, Settings{MinHealthyPercentage: 100, MaxUnavailable: 1}, "o+", "a"},
		{"a group of one, its successor starting", 1, def, "n-", "wait"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := Decide(c.desired, c.s, ins(c.spec))
			got := strings.Join(st.Terminate, " ")
			switch {
			case st.Done:
				got = "done"
			case got == "":
				got = "wait"
			}
			if got != c.want {
				t.Fatalf("Decide(%d, %+v, %s) = %+v, want %s", c.desired, c.s, c.spec, st, c.want)
			}
		})
	}
}
