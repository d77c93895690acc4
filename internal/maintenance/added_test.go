package maintenance

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/store"
)

// TestAddedActions: a scheduled action added at run time runs on its
// schedule, replaces one of its name, cannot replace the config's, and
// is still there for the next controller.
func TestAddedActions(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var mu sync.Mutex
	calls := map[string][]int{}
	scale := func(_ context.Context, group string, _, _, desired *int) error {
		mu.Lock()
		defer mu.Unlock()
		calls[group] = append(calls[group], *desired)
		return nil
	}
	got := func(group string) []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), calls[group]...)
	}
	cfg := testConfig(t, []string{"web", "dev"}, nil, []config.ScheduledAction{{Name: "morning", Group: "web", Schedule: "0 12 * * *", Desired: new(3)}})
	newSched := func(now time.Time) *Scheduler {
		s, err := New(cfg, Deps{Scale: scale, Records: st, Now: offsetClock(now), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		s.Run()
		return s
	}
	// Thursday 2 January 2025, a moment before 08:00 UTC.
	s := newSched(time.Date(2025, 1, 2, 7, 59, 59, 900e6, time.UTC))
	if err := s.PutAction(config.ScheduledAction{Name: "night", Group: "dev", Schedule: "0 8 * * *", Desired: new(0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the added action applied", func() bool { return len(got("dev")) == 1 })
	for _, bad := range []struct {
		a    config.ScheduledAction
		want string
	}{
		{config.ScheduledAction{Name: "morning", Group: "web", Schedule: "0 8 * * *", Desired: new(1)}, "defined in the config"},
		{config.ScheduledAction{Name: "x", Group: "dev", Schedule: "every night", Desired: new(1)}, "5 fields"},
		{config.ScheduledAction{Name: "x", Group: "dev", Schedule: "0 8 * * *"}, "sets no capacity"},
		{config.ScheduledAction{Name: "x", Group: "dev", Schedule: "0 8 * * *", TimeZone: "Mars/Base", Desired: new(1)}, "Mars/Base"},
	} {
		if err := s.PutAction(bad.a); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("PutAction(%+v): %v, want %q", bad.a, err, bad.want)
		}
	}
	if err := s.PutAction(config.ScheduledAction{Name: "morning", Group: "web", Schedule: "0 8 * * *", Desired: new(1)}); !errors.Is(err, ErrConfigAction) {
		t.Errorf("replacing the config's action: %v", err)
	}
	// Replaced: now at 09:00, desired 5.
	if err := s.PutAction(config.ScheduledAction{Name: "night", Group: "dev", Schedule: "0 9 * * *", Desired: new(5)}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range s.Actions() {
		if a.Name == "night" {
			n++
			if a.Schedule != "0 9 * * *" || *a.Desired != 5 {
				t.Errorf("the replaced action is %+v", a)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d actions named night: %+v", n, s.Actions())
	}
	s.Close()
	// The next controller, the next day a moment before 09:00: the added
	// action, as replaced, runs.
	s = newSched(time.Date(2025, 1, 3, 8, 59, 59, 900e6, time.UTC))
	defer s.Close()
	waitFor(t, "the recorded added action applied by the next controller", func() bool { return len(got("dev")) == 2 })
	if d := got("dev"); d[1] != 5 {
		t.Errorf("dev's capacities %v, want [0 5]", d)
	}
}
