package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDocumentTables(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Now().UTC().Truncate(time.Millisecond)
	for i, st := range []string{"Success", "InProgress", "Failed"} {
		r := ExecutionRecord{ID: "exec-" + st, Document: "doc", Status: st, StartedAt: t0.Add(time.Duration(i) * time.Second), Body: []byte(`{"n":1}`)}
		if err := s.PutExecution(ctx, r, Event{Type: "execution.start"}); err != nil {
			t.Fatal(err)
		}
	}
	// Rewritten whole.
	if err := s.PutExecution(ctx, ExecutionRecord{ID: "exec-InProgress", Document: "doc", Status: "Success", StartedAt: t0.Add(time.Second), Body: []byte(`{"n":2}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Execution(ctx, "exec-InProgress")
	if err != nil || got.Status != "Success" || string(got.Body) != `{"n":2}` || !got.StartedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("execution %+v %v", got, err)
	}
	if _, err := s.Execution(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing execution: %v", err)
	}
	all, _ := s.Executions(ctx, 0)
	if len(all) != 3 || all[0].ID != "exec-Failed" {
		t.Fatalf("newest first: %+v", all)
	}
	ok, _ := s.Executions(ctx, 10, "Success")
	if len(ok) != 2 {
		t.Fatalf("status filter: %+v", ok)
	}
	if err := s.PutIncident(ctx, IncidentRecord{ID: "inc-1", Key: "k", Status: "open", OpenedAt: t0, Body: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if inc, err := s.Incident(ctx, "inc-1"); err != nil || inc.Key != "k" {
		t.Fatalf("incident %+v %v", inc, err)
	}
	if open, _ := s.Incidents(ctx, 10, "open", "escalated"); len(open) != 1 {
		t.Fatalf("open incidents %+v", open)
	}
	evs, _ := s.Events(ctx, EventFilter{Limit: 100})
	n := 0
	for _, ev := range evs {
		if ev.Type == "execution.start" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d execution.start events, want 3 (one per put that had one)", n)
	}
}
