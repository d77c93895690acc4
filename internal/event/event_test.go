package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// samples holds one filled value of every kind, so that a kind whose data
// does not survive the journal's JSON fails here.
var samples = []Data{
	InstanceState{From: "Pending", To: "InService", Cause: "health checks passed", Replaces: "i-1"},
	InstanceExit{Code: -1, Signal: "SIGKILL", Planned: true},
	InstanceFenced{Code: 0, DurationMS: 12},
	InstanceHealth{Check: 1, Type: "http", Status: "unhealthy", Consecutive: 3, Output: "503"},
	InstanceHeal{Action: "replace", DelayMS: 2000, NotBefore: "2026-01-01T00:00:02Z", Failure: "exit 1", Reason: "3 restarts"},
	InstanceHook{Hook: "h", Phase: "launch", ExitCode: 2, TimedOut: true, Output: "x"},
	InstanceUserData{ExitCode: 0, OK: true, Output: "ok"},
	InstanceAdopt{State: "InService", Alive: true, Pid: 7},
	VolumeAttach{Volume: "data", Token: 9, PreviousHolder: "i-1"},
	VolumeDetach{Volume: "data", Token: 9},
	VolumeInit{Volume: "data", ExitCode: 1, Output: "no"},
	VolumePin{Host: "h2"},
	AddressAssociate{Address: "http", PreviousHolder: "i-1"},
	AddressDisassociate{Address: "http", Drained: true},
	GroupScale{Min: 0, Max: 2, Desired: 1, Prev: &Capacity{Max: 1, Desired: 1}, Cause: "scale"},
	GroupImpaired{Reason: "r"},
	GroupActive{Reason: "r"},
	GroupError{Op: "fence", Error: "e"},
	ControllerStart{Version: "v", Config: "c.yaml", Pid: 1},
	ControllerStop{Cause: "signal"},
	ControllerSweep{Pids: []int{3, 4}},
	ControllerOrphanGroup{State: "InService"},
	ControllerStateDir{Dir: "/var/lib/autoheal", Error: "no space left on device", Since: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DownMS: 1200},
	APIAudit{Token: "t", Role: "operator", Method: "POST", Path: "/v1/x", Status: 202, Remote: "127.0.0.1:1"},
	NotifyDelivered{Delivery{Delivery: 3, Channel: "ops", ChannelType: "webhook", Key: "inc-1", Event: "trigger", Attempts: 1}},
	NotifyFailed{Delivery{Delivery: 4, Channel: "ops", Attempts: 5, HTTPStatus: 500, Error: "e"}},
	AlarmState{Alarm: "a", Key: "a/InstanceId=i-1", From: "OK", To: "ALARM", Dimensions: map[string]string{"InstanceId": "i-1"}},
	IncidentOpen{Incident: Incident{Incident: "inc-1", Status: "open"}, Source: "alarm", Alarm: "a", Reason: "r"},
	IncidentAttempt{Incident: Incident{Incident: "inc-1"}, Attempt: 2, Runbook: "rb", Execution: "e-1"},
	IncidentEscalated{Incident: Incident{Incident: "inc-1"}, Reason: "r"},
	IncidentResolved{Incident: Incident{Incident: "inc-1"}, RecoverMS: 1500},
	ExecutionStart{Execution: Execution{Execution: "e-1", Document: "d"}, Origin: "api"},
	ExecutionStep{Execution: Execution{Execution: "e-1"}, Step: "s", Status: "Failed", Error: "e"},
	ExecutionEnd{Execution: Execution{Execution: "e-1"}, Status: "Success"},
	ExecutionApproval{Execution: Execution{Execution: "e-1"}, Step: "s", Message: "m"},
	ExecutionResume{Execution: Execution{Execution: "e-1"}, Step: "s", Action: "continue"},
	WindowStart{Window: "w", RunID: "r", Trigger: "schedule", Targets: []string{"i-1"}, Start: time.Unix(10, 0).UTC()},
	WindowEnd{Window: "w", RunID: "r", Outcome: "Success", Targets: 2, Succeeded: 2},
	WindowSkip{Window: "w", Start: time.Unix(10, 0).UTC(), Reason: "running"},
	WindowResume{Window: "w", RunID: "mw-1", Action: "continue", Tasks: 2, Running: 1, End: time.Unix(20, 0).UTC()},
	TaskStart{Task{Window: "w", RunID: "r", Task: 1, Document: "d", Execution: "e-1"}},
	TaskEnd{Task: Task{Window: "w", Task: 1}, Status: "Failed", Error: "e"},
	ScheduledAction{Action: "a", Schedule: "cron(0 8 * * ? *)", Time: time.Unix(10, 0).UTC(), Desired: new(int)},
	GroupRefresh{Status: "InProgress", Instance: "i-1", Reason: "r"},
}

func TestEveryKindRoundTrips(t *testing.T) {
	seen := map[Kind]bool{}
	for _, d := range samples {
		k := d.Kind()
		t.Run(string(k), func(t *testing.T) {
			if seen[k] {
				t.Fatalf("two samples of %s", k)
			}
			seen[k] = true
			ev := New("web", "i-2", "message", d)
			ev.Seq, ev.Time = 3, time.Unix(20, 0).UTC()
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, ev) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", back, ev)
			}
		})
	}
	for _, k := range Kinds() {
		if !seen[k] {
			t.Errorf("kind %s has no sample", k)
		}
	}
}

func TestUnknownKindKeepsItsData(t *testing.T) {
	in := `{"seq":1,"time":"2026-01-01T00:00:00Z","type":"future.kind","message":"m","data":{"a":[1,2]}}`
	var ev Event
	if err := json.Unmarshal([]byte(in), &ev); err != nil {
		t.Fatal(err)
	}
	raw, ok := ev.Data.(Raw)
	if !ok || raw.Kind() != "future.kind" || string(raw.JSON) != `{"a":[1,2]}` {
		t.Fatalf("data %#v", ev.Data)
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("re-encoded\n%s\nwant\n%s", out, in)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		ok   bool
	}{
		{"kind and data agree", New("", "", "", GroupActive{}), true},
		{"no data", Event{Type: KindControllerStop}, true},
		{"no kind", Event{Data: GroupActive{}}, false},
		{"data of another kind", Event{Type: KindGroupImpaired, Data: GroupActive{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.ev.Check(); (err == nil) != tt.ok {
				t.Fatalf("Check() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestDecodeRejectsDataOfTheWrongShape(t *testing.T) {
	if _, err := Decode(KindInstanceState, []byte(`{"from": 3}`)); err == nil {
		t.Fatal("a number for a string field was accepted")
	}
}
