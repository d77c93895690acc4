package awsapi

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// Scaling activities, from the journal.

type asgActivity struct {
	ActivityID           string `xml:"ActivityId"`
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	AutoScalingGroupARN  string `xml:"AutoScalingGroupARN"`
	Description          string `xml:"Description"`
	Cause                string `xml:"Cause"`
	StartTime            string `xml:"StartTime"`
	EndTime              string `xml:"EndTime,omitempty"`
	StatusCode           string `xml:"StatusCode"`
	StatusMessage        string `xml:"StatusMessage,omitempty"`
	Progress             int    `xml:"Progress"`
	Details              string `xml:"Details"`

	// seq orders activities that started together.
	seq int64
}

type describeScalingActivitiesResult struct {
	Activities queryList[asgActivity] `xml:"Activities"`
	NextToken  string                 `xml:"NextToken,omitempty"`
}

// Activity kinds.
const (
	activityLaunch    = "launch"
	activityRestart   = "restart"
	activityTerminate = "terminate"
)

const activityDetails = `{"Availability Zone":"` + awsid.Zone + `"}`

// activityID is an activity's id, UUID-shaped and stable: an instance is
// launched and terminated once (seq 0), restarted in place at the event
// seq.
func activityID(grp, instance, kind string, seq int64) string {
	return awsid.StableUUID("activity", grp, instance, kind, strconv.FormatInt(seq, 10))
}

// activityProgress is an in-progress activity's progress by the state its
// instance reached.
func activityProgress(state string) int {
	switch state {
	case group.Pending:
		return 10
	case group.PendingWait:
		return 30
	case group.PendingProceed:
		return 50
	case group.Terminating:
		return 30
	case group.TerminatingWait:
		return 60
	}
	return 0
}

// activitiesOf reads a group's scaling activities from its journal events
// (in journal order): an instance's launch (from its first state to
// InService), a restart in place (from Pending again to InService) and its
// termination (from Terminating to Terminated). A launch or restart that
// ends otherwise than InService failed. They are returned newest first.
func activitiesOf(grp string, evs []store.Event) []asgActivity {
	var out []*asgActivity
	current := map[string]*asgActivity{} // the instance's activity in progress
	start := func(ev store.Event, kind string, seq int64, desc, cause string) *asgActivity {
		a := &asgActivity{
			ActivityID: activityID(grp, ev.Instance, kind, seq), AutoScalingGroupName: grp, AutoScalingGroupARN: awsid.GroupARN(grp),
			Description: desc, Cause: cause, StartTime: asgTime(ev.Time), StatusCode: "InProgress",
			Details: activityDetails, seq: ev.Seq,
		}
		out = append(out, a)
		current[ev.Instance] = a
		return a
	}
	end := func(ev store.Event, code, msg string) {
		a := current[ev.Instance]
		if a == nil {
			return
		}
		a.EndTime, a.StatusCode, a.StatusMessage, a.Progress = asgTime(ev.Time), code, msg, 100
		delete(current, ev.Instance)
	}
	for _, ev := range evs {
		d, ok := ev.Data.(event.InstanceState)
		if !ok || ev.Instance == "" {
			continue
		}
		at := ev.Time.UTC().Format(time.RFC3339)
		cur := current[ev.Instance]
		switch {
		case d.From == "":
			cause := fmt.Sprintf("At %s an instance was started: %s.", at, d.Cause)
			if d.Replaces != "" {
				cause = fmt.Sprintf("At %s an instance was started in response to the replacement of instance %s: %s.", at, d.Replaces, d.Cause)
			}
			start(ev, activityLaunch, 0, "Launching a new EC2 instance: "+ev.Instance, cause)
		case d.To == group.Pending:
			if cur != nil && !strings.HasPrefix(cur.Description, "Terminating") {
				end(ev, "Failed", "the instance failed before it was InService and is restarted in place: "+d.Cause)
			}
			start(ev, activityRestart, ev.Seq, "Restarting EC2 instance in place: "+ev.Instance,
				fmt.Sprintf("At %s instance %s was restarted in place: %s.", at, ev.Instance, d.Cause))
		case d.To == group.InService:
			end(ev, "Successful", "")
			continue
		case d.To == group.Terminating || d.To == group.TerminatingWait || d.To == group.Terminated:
			if cur != nil && !strings.HasPrefix(cur.Description, "Terminating") {
				end(ev, "Failed", "the instance failed before it was InService: "+d.Cause)
				cur = nil
			}
			if cur == nil {
				cause := fmt.Sprintf("At %s instance %s was taken out of service: %s.", at, ev.Instance, d.Cause)
				if d.ReplacedBy != "" {
					cause = fmt.Sprintf("At %s instance %s was taken out of service and replaced by %s: %s.", at, ev.Instance, d.ReplacedBy, d.Cause)
				}
				start(ev, activityTerminate, 0, "Terminating EC2 instance: "+ev.Instance, cause)
			}
			if d.To == group.Terminated {
				end(ev, "Successful", "")
				continue
			}
		}
		if a := current[ev.Instance]; a != nil {
			a.Progress = activityProgress(d.To)
		}
	}
	res := make([]asgActivity, 0, len(out))
	for i := len(out) - 1; i >= 0; i-- {
		res = append(res, *out[i])
	}
	return res
}

// asgActivityEvents is how far back the journal is read for activities.
const asgActivityEvents = 10000

func (h *Handler) describeScalingActivities(c *call) (any, error) {
	max, err := asgMaxRecords(c.params, 100, 100)
	if err != nil {
		return nil, err
	}
	if _, err := asgBool(c.params, "IncludeDeletedGroups"); err != nil {
		return nil, err
	}
	var gs []api.Group
	if name := c.params.Get("AutoScalingGroupName"); name != "" {
		// An unknown group has no activities, as on AWS.
		if g, ok := h.groups[awsid.GroupName(name)]; ok {
			gs = append(gs, g)
		}
	} else {
		gs = h.sortedGroups()
	}
	ids := list(c.params, "ActivityIds.member")
	var all []asgActivity
	for _, g := range gs {
		if h.deps.Journal == nil {
			break
		}
		evs, err := h.deps.Journal.Events(c.ctx, store.EventFilter{Group: g.Name(), Limit: asgActivityEvents, Tail: true})
		if err != nil {
			return nil, &apiError{Status: 500, Code: "InternalFailure", Msg: "reading the journal: " + err.Error()}
		}
		for _, a := range activitiesOf(g.Name(), evs) {
			if len(ids) == 0 || slices.Contains(ids, a.ActivityID) {
				all = append(all, a)
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].StartTime != all[j].StartTime {
			return all[i].StartTime > all[j].StartTime
		}
		return all[i].seq > all[j].seq
	})
	acts, next, err := asgPage(c.params, all, max)
	if err != nil {
		return nil, err
	}
	return &describeScalingActivitiesResult{Activities: listOf(acts), NextToken: next}, nil
}
