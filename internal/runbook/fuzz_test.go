package runbook

import (
	"slices"
	"testing"
)

// FuzzDuration feeds the Duration of sleep steps (ISO 8601 or Go).
// What it accepts is between zero and maxDuration.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"PT30S", "PT1H30M", "P1D", "P1DT12H", "PT0.5S", "30s", "1h30m", "P", "PT", "P999999999D", "-1s", "PT1.S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && (d < 0 || d > maxDuration) {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}

// FuzzRender feeds the {{ }} references of document inputs. Rendering
// looks up only the names References finds, and leaves a string without
// references as it is.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"{{ InstanceId }}", "a {{ x }} b {{ y.z }}", "{{ }}", "{{{{ a }}}}", "{{ automation:EXECUTION_ID }}", "no refs", "{{ a }"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		refs := References(s)
		var asked []string
		out, err := Render(s, func(name string) (any, bool) {
			asked = append(asked, name)
			return "v", true
		})
		if err != nil {
			t.Fatalf("Render(%q) with every name known: %v", s, err)
		}
		for _, name := range asked {
			if !slices.Contains(refs, name) {
				t.Fatalf("Render(%q) looked up %q; References found %q", s, name, refs)
			}
		}
		if len(refs) == 0 && out != s {
			t.Fatalf("Render(%q) = %q without references", s, out)
		}
	})
}
