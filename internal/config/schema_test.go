package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAnchorsAndMergeKeys(t *testing.T) {
	cfg := loadGood(t, "testdata/anchors.good.yaml")
	first, second := cfg.Groups[0], cfg.Groups[1]
	if got := second.Launch.Args; !slices.Equal(got, []string{"-c", "exec sleep 60"}) {
		t.Errorf("merged args = %q", got)
	}
	if got := second.Launch.StopTimeout.D(); got != 20*time.Second {
		t.Errorf("overriding stop_timeout = %v, want 20s", got)
	}
	if first.Launch.StopTimeout.D() != 5*time.Second {
		t.Errorf("the anchor's own stop_timeout changed: %v", first.Launch.StopTimeout)
	}
	if *second.Heal.MaxRestarts != 0 || second.Heal.BackoffBase.D() != 100*time.Millisecond {
		t.Errorf("aliased heal = %+v", second.Heal)
	}
	if len(second.HealthChecks) != 1 || second.HealthChecks[0].Interval.D() != 2*time.Second {
		t.Errorf("aliased health check = %+v", second.HealthChecks)
	}
}

// TestAliasedValuesAreChecked pins that the schema check follows aliases and
// merge keys: an unknown field in a merged mapping is an error, at its place.
func TestAliasedValuesAreChecked(t *testing.T) {
	_, err := Parse("mem.yaml", []byte(`groups:
  - name: a
    launch: &l
      command: sh
      comand: typo
  - name: b
    launch:
      <<: *l
      stop_timeout: 10x
`))
	want := `mem.yaml:5:7: unknown field "comand" (did you mean "command"?)
mem.yaml:9:21: stop_timeout: invalid duration "10x": use a number with a unit, like 500ms, 10s or 1m30s`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

// TestMergeOrder pins the one place where go-yaml's merge keys differ from
// the YAML spec: a key written before a << that also sets it would be
// replaced by the merged value, so it is refused.
func TestMergeOrder(t *testing.T) {
	base := "groups:\n  - name: a\n    launch: &l {command: sh, stop_timeout: 5s}\n  - name: b\n    launch:\n"
	cfg, err := Parse("mem.yaml", []byte(base+"      <<: *l\n      stop_timeout: 7s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Groups[1].Launch.StopTimeout.D(); got != 7*time.Second {
		t.Errorf("a key after << = %v, want 7s", got)
	}
	_, err = Parse("mem.yaml", []byte(base+"      stop_timeout: 7s\n      <<: *l\n"))
	want := `mem.yaml:6:7: "stop_timeout" is replaced by the << merge after it: put << before the keys that override it`
	if errString(err) != want {
		t.Errorf("a key before <<: got %v, want %s", err, want)
	}
	// A merged mapping is checked against the schema of the mapping it is
	// merged into.
	_, err = Parse("mem.yaml", []byte("groups:\n  - name: a\n    heal: &h {backoff_base: 1s}\n    launch:\n      <<: *h\n"))
	if want := `mem.yaml:3:15: unknown field "backoff_base" (known fields: `; !strings.HasPrefix(errString(err), want) {
		t.Errorf("merging a heal into a launch: got %v, want %s...", err, want)
	}
	// go-yaml merges one mapping, not a list of them.
	_, err = Parse("mem.yaml", []byte(base+"      <<: [*l]\n"))
	if want := `mem.yaml:6:7: << must merge one mapping, like <<: *defaults`; errString(err) != want {
		t.Errorf("merging a list: got %v, want %s", err, want)
	}
}
