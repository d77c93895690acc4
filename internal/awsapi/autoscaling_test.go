package awsapi

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

func TestASGLifecycleState(t *testing.T) {
	tests := []struct {
		state, want string
		listed      bool
	}{
		{"Pending", "Pending", true},
		{"Pending:Wait", "Pending:Wait", true},
		{"Pending:Proceed", "Pending:Proceed", true},
		{"InService", "InService", true},
		{"Terminating", "Terminating", true},
		{"Terminating:Wait", "Terminating:Wait", true},
		{"Terminated", "", false},
		{"", "", false},
		{"Standby", "", false},
	}
	for _, tt := range tests {
		got, ok := asgLifecycleState(tt.state)
		if got != tt.want || ok != tt.listed {
			t.Errorf("asgLifecycleState(%q) = %q, %v; want %q, %v", tt.state, got, ok, tt.want, tt.listed)
		}
	}
}

func TestASGHealthStatus(t *testing.T) {
	tests := []struct {
		health string
		upper  bool
		want   string
	}{
		{"initial", false, "Healthy"},
		{"healthy", false, "Healthy"},
		{"unhealthy", false, "Unhealthy"},
		{"", false, "Healthy"},
		{"healthy", true, "HEALTHY"},
		{"unhealthy", true, "UNHEALTHY"},
	}
	for _, tt := range tests {
		if got := asgHealthStatus(tt.health, tt.upper); got != tt.want {
			t.Errorf("asgHealthStatus(%q, %v) = %q, want %q", tt.health, tt.upper, got, tt.want)
		}
	}
}

func TestASGHealthCheckType(t *testing.T) {
	if got := asgHealthCheckType(config.Group{}); got != "EC2" {
		t.Errorf("no health checks: %s", got)
	}
	if got := asgHealthCheckType(config.Group{HealthChecks: []config.HealthCheck{{Type: "http"}}}); got != "ELB" {
		t.Errorf("health checks: %s", got)
	}
}

// stubGroup is an api.Group with a config; its other methods are not
// called.
type stubGroup struct {
	api.Group
	cfg config.Group
}

func (g stubGroup) Config() config.Group { return g.cfg }
func (g stubGroup) Name() string         { return g.cfg.Name }

func TestASGHarmlessUpdate(t *testing.T) {
	g := stubGroup{cfg: config.Group{Name: "web"}}
	tests := []struct {
		name  string
		value string
		ok    bool
	}{
		{"DefaultCooldown", "60", true},
		{"HonorCooldown", "true", true},
		{"ServiceLinkedRoleARN", "arn:aws:iam::1:role/x", true},
		{"AvailabilityZones", "locala", true},
		{"AvailabilityZones", "us-east-1a", false},
		{"HealthCheckType", "EC2", true},
		{"HealthCheckType", "ELB", false},
		{"HealthCheckGracePeriod", "0", true},
		{"HealthCheckGracePeriod", "300", false},
		{"TerminationPolicies", "Default", true},
		{"TerminationPolicies", "OldestInstance", false},
		{"NewInstancesProtectedFromScaleIn", "false", true},
		{"NewInstancesProtectedFromScaleIn", "true", false},
		{"MaxInstanceLifetime", "0", true},
		{"MaxInstanceLifetime", "86400", false},
		{"LaunchTemplate", "lt-1", false},
		{"VPCZoneIdentifier", "subnet-1", false},
		{"PlacementGroup", "pg", false},
	}
	for _, tt := range tests {
		ok, why := asgHarmlessUpdate(tt.name, []string{tt.value}, g)
		if ok != tt.ok {
			t.Errorf("%s=%s: harmless %v (%s), want %v", tt.name, tt.value, ok, why, tt.ok)
		}
		if !ok && why == "" {
			t.Errorf("%s=%s refused without a reason", tt.name, tt.value)
		}
	}
}

func TestASGPage(t *testing.T) {
	all := []int{1, 2, 3, 4, 5}
	var got []int
	p := url.Values{}
	for pages := 0; ; pages++ {
		items, next, err := asgPage(p, all, 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, items...)
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages, want 3", pages+1)
			}
			break
		}
		p.Set("NextToken", next)
	}
	if fmt.Sprint(got) != fmt.Sprint(all) {
		t.Errorf("pages gave %v", got)
	}
	for _, bad := range []string{"bogus", "b2Zmc2V0Ojk5" /* offset:99 */} {
		if _, _, err := asgPage(url.Values{"NextToken": {bad}}, all, 2); err == nil || !strings.Contains(err.Error(), "InvalidNextToken") {
			t.Errorf("NextToken %q: %v", bad, err)
		}
	}
}

func TestASGMaxRecords(t *testing.T) {
	tests := []struct {
		v    string
		want int
		err  string
	}{
		{"", 50, ""},
		{"7", 7, ""},
		{"0", 0, "out of range"},
		{"101", 0, "out of range"},
		{"x", 0, "not an integer"},
	}
	for _, tt := range tests {
		p := url.Values{}
		if tt.v != "" {
			p.Set("MaxRecords", tt.v)
		}
		got, err := asgMaxRecords(p, 50, 100)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) || got != tt.want {
			t.Errorf("MaxRecords %q: %d, %v; want %d, %q", tt.v, got, err, tt.want, tt.err)
		}
	}
}

// TestActivitiesOf maps an instance's journaled transitions to scaling
// activities.
func TestActivitiesOf(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	seq := int64(0)
	ev := func(id, from, to, cause string, extra ...func(*event.InstanceState)) store.Event {
		seq++
		d := event.InstanceState{From: from, To: to, Cause: cause}
		for _, f := range extra {
			f(&d)
		}
		return store.Event{Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second), Type: d.Kind(), Group: "web", Instance: id, Data: d}
	}
	other := store.Event{Seq: 100, Type: event.KindGroupScale, Group: "web", Data: event.GroupScale{Desired: 2}}
	evs := []store.Event{
		// a: launched, InService, restarted in place, InService, terminated.
		ev("i-a", "", "Pending", "capacity 0 below desired 1"),
		ev("i-a", "Pending", "Pending:Proceed", "starting"),
		ev("i-a", "Pending:Proceed", "InService", "health checks passed"),
		other,
		ev("i-a", "InService", "Pending", "restart in place: exit 1"),
		ev("i-a", "Pending", "InService", "health checks passed"),
		ev("i-a", "InService", "Terminating", "terminated by operator"),
		ev("i-a", "Terminating", "Terminating:Wait", "stopped"),
		ev("i-a", "Terminating:Wait", "Terminated", "detached"),
		// b: its launch fails and it is replaced by c, still launching.
		ev("i-b", "", "Pending", "capacity 1 below desired 2"),
		ev("i-b", "Pending", "Pending:Wait", "attached"),
		ev("i-b", "Pending:Wait", "Terminating", "replaced: launch hook wait failed", func(d *event.InstanceState) { d.ReplacedBy = "i-c" }),
		ev("i-c", "", "Pending", "replacement for i-b", func(d *event.InstanceState) { d.Replaces = "i-b" }),
		ev("i-c", "Pending", "Pending:Wait", "attached"),
	}
	got := activitiesOf("web", evs)
	type want struct {
		desc, code string
		progress   int
		cause      string
	}
	wants := []want{ // newest first
		{"Launching a new EC2 instance: i-c", "InProgress", 30, "in response to the replacement of instance i-b"},
		{"Terminating EC2 instance: i-b", "InProgress", 30, "replaced by i-c"},
		{"Launching a new EC2 instance: i-b", "Failed", 100, "capacity 1 below desired 2"},
		{"Terminating EC2 instance: i-a", "Successful", 100, "terminated by operator"},
		{"Restarting EC2 instance in place: i-a", "Successful", 100, "restart in place: exit 1"},
		{"Launching a new EC2 instance: i-a", "Successful", 100, "capacity 0 below desired 1"},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d activities, want %d: %+v", len(got), len(wants), got)
	}
	ids := map[string]bool{}
	for i, w := range wants {
		a := got[i]
		if a.Description != w.desc || a.StatusCode != w.code || a.Progress != w.progress || !strings.Contains(a.Cause, w.cause) {
			t.Errorf("activity %d: %+v\nwant %+v", i, a, w)
		}
		if (a.EndTime == "") != (w.code == "InProgress") {
			t.Errorf("activity %d: %s with EndTime %q", i, w.code, a.EndTime)
		}
		if ids[a.ActivityID] {
			t.Errorf("activity id %s twice", a.ActivityID)
		}
		ids[a.ActivityID] = true
	}
	// TerminateInstanceInAutoScalingGroup's activity id is the one the
	// journal's termination gets.
	if got[3].ActivityID != activityID("web", "i-a", activityTerminate, 0) {
		t.Errorf("termination activity id %s, want the one TerminateInstanceInAutoScalingGroup returns", got[3].ActivityID)
	}
	if got[2].StatusMessage == "" {
		t.Errorf("failed launch without a message: %+v", got[2])
	}
}
