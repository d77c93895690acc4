package api

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/runbook"
	"github.com/autoheal/autoheal/internal/store"
)

// TestWaitExecutionIsNotified follows an execution through the API the
// way `autoheal run` does: a wait with the state it has answers when the
// engine changes the execution (here, an approval), not on a timer.
func TestWaitExecutionIsNotified(t *testing.T) {
	docs := t.TempDir()
	gate := "schemaVersion: \"0.3\"\nmainSteps:\n  - {name: ask, action: approve, inputs: {Message: go on?}}\n  - {name: done, action: sleep, inputs: {Duration: 1ms}}\n"
	if err := os.WriteFile(filepath.Join(docs, "gate.yaml"), []byte(gate), 0o644); err != nil {
		t.Fatal(err)
	}
	st := testJournal(t)
	lib := runbook.NewLibrary(docs)
	eng := runbook.NewEngine(runbook.Deps{Store: st, Documents: lib.Get, Logger: slog.New(slog.DiscardHandler)})
	defer eng.Close()
	srv := adminServer(t, Deps{Journal: st, Runbooks: eng, Documents: lib, Logger: slog.New(slog.DiscardHandler)})
	c := NewClient(srv.URL)
	ctx := context.Background()
	id, err := c.Run(ctx, wire.RunRequest{Document: "gate"})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until it waits for approval, from state to state.
	var ex wire.Execution
	tag := ""
	for ex.Status != wire.StatusWaiting {
		var changed bool
		if ex, tag, changed, err = c.WaitExecution(ctx, id, tag, time.Minute); err != nil || !changed {
			t.Fatalf("wait: %+v %v %v", ex, changed, err)
		}
	}
	// A wait with the current state blocks (a short one ends 304, no
	// change)...
	if _, again, changed, err := c.WaitExecution(ctx, id, tag, 50*time.Millisecond); err != nil || changed || again != tag {
		t.Fatalf("a wait on an unchanged execution: changed %v, %v", changed, err)
	}
	// ...until the execution changes: the approval wakes it.
	type answer struct {
		ex      wire.Execution
		changed bool
		err     error
	}
	got := make(chan answer, 1)
	go func() {
		ex, _, changed, err := c.WaitExecution(ctx, id, tag, time.Minute)
		got <- answer{ex, changed, err}
	}()
	if err := c.ApproveExecution(ctx, id, wire.ApproveRequest{Approver: "test"}); err != nil {
		t.Fatal(err)
	}
	a := <-got
	if a.err != nil || !a.changed || len(a.ex.Approvals) != 1 {
		t.Fatalf("after the approval: %s with approvals %+v, changed %v, %v", a.ex.Status, a.ex.Approvals, a.changed, a.err)
	}
	tag = ""
	// A wait on an ended execution answers at once.
	for !wire.Ended(a.ex.Status) {
		a.ex, tag, a.changed, a.err = c.WaitExecution(ctx, id, tag, time.Minute)
		if a.err != nil {
			t.Fatal(a.err)
		}
	}
	if a.ex.Status != wire.StatusSuccess {
		t.Errorf("ended %s", a.ex.Status)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/v1/executions/"+id+"?wait=2m", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("wait=2m: %d, want 400 (at most a minute)", resp.StatusCode)
	}
}

// feedJournal is a journal whose live feed the test writes.
type feedJournal struct {
	Journal
	feed chan store.Event
}

func (j *feedJournal) Subscribe(int) (<-chan store.Event, func()) { return j.feed, func() {} }

// TestRestartAnswerIsNotified: the restart endpoint waits for the restart
// to begin woken by the journal, not by polling: in a bubble whose clock
// moves only when everything waits, the answer comes with no time passed.
func TestRestartAnswerIsNotified(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newFakeGroup("pet", "", petA)
		j := &feedJournal{feed: make(chan store.Event, 1)}
		h := New(Deps{Journal: j, Groups: []Group{g}, Logger: slog.New(slog.DiscardHandler)})
		defer h.Close()
		before, _ := g.Instance(petA)
		start := time.Now()
		done := make(chan store.Instance, 1)
		go func() { done <- h.waitRestartBegun(context.Background(), g, before) }()
		synctest.Wait() // it waits
		select {
		case in := <-done:
			t.Fatalf("answered %s before the restart began", in.State)
		default:
		}
		g.mu.Lock()
		g.instances[0].State = group.Pending
		g.mu.Unlock()
		j.feed <- store.Event{Type: event.KindInstanceState, Instance: petA, Data: event.InstanceState{To: "InService"}}
		synctest.Wait()
		select {
		case in := <-done:
			if in.State != group.Pending || time.Since(start) != 0 {
				t.Fatalf("answered %s after %s", in.State, time.Since(start))
			}
		default:
			t.Fatal("not woken by the journal")
		}
	})
}
