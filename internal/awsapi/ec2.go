package awsapi

import (
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/store"
)

// EC2's actions over autoheal's instances, addresses and volumes
// (docs/design.md §14).
var ec2Actions = map[string]action{
	"DescribeInstances":      {need: config.RoleViewer, run: (*Handler).describeInstances},
	"DescribeInstanceStatus": {need: config.RoleViewer, run: (*Handler).describeInstanceStatus},
	"RebootInstances":        {need: config.RoleOperator, run: (*Handler).rebootInstances},
	"TerminateInstances":     {need: config.RoleOperator, run: (*Handler).terminateInstances},
	"StopInstances":          {need: config.RoleOperator, run: (*Handler).stopInstances},
	"StartInstances":         {need: config.RoleOperator, run: (*Handler).startInstances},
	"DescribeAddresses":      {need: config.RoleViewer, run: (*Handler).describeAddresses},
	"AssociateAddress":       {need: config.RoleOperator, run: (*Handler).associateAddress},
	"DisassociateAddress":    {need: config.RoleOperator, run: (*Handler).disassociateAddress},
	"DescribeVolumes":        {need: config.RoleViewer, run: (*Handler).describeVolumes},
	"AttachVolume":           {need: config.RoleOperator, run: (*Handler).attachVolume},
	"DetachVolume":           {need: config.RoleOperator, run: (*Handler).detachVolume},
}

// ec2State is an instance's EC2 state: code and name.
type ec2State struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

// ec2StateOf maps autoheal's lifecycle states to EC2's.
func ec2StateOf(state string) ec2State {
	switch {
	case strings.HasPrefix(state, "Pending"):
		return ec2State{0, "pending"}
	case state == "InService":
		return ec2State{16, "running"}
	case strings.HasPrefix(state, "Terminating"):
		return ec2State{32, "shutting-down"}
	default:
		return ec2State{48, "terminated"}
	}
}

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

type ec2Instance struct {
	InstanceID       string   `xml:"instanceId"`
	ImageID          string   `xml:"imageId"`
	State            ec2State `xml:"instanceState"`
	InstanceType     string   `xml:"instanceType"`
	LaunchTime       string   `xml:"launchTime"`
	AvailabilityZone string   `xml:"placement>availabilityZone"`
	PrivateIP        string   `xml:"privateIpAddress,omitempty"`
	PublicIP         string   `xml:"ipAddress,omitempty"`
	Tags             []ec2Tag `xml:"tagSet>item"`
}

type ec2Reservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []ec2Instance `xml:"instancesSet>item"`
}

type describeInstancesResult struct {
	ec2Result
	Reservations []ec2Reservation `xml:"reservationSet>item"`
}

// instanceRef is an instance and its group.
type instanceRef struct {
	group api.Group
	in    store.Instance
}

// liveInstances are the instances of every group, live ones, in group
// then id order.
func (h *Handler) liveInstances() []instanceRef {
	var out []instanceRef
	for _, g := range h.sortedGroups() {
		for _, in := range g.Snapshot().Instances {
			out = append(out, instanceRef{g, in})
		}
	}
	return out
}

func (h *Handler) sortedGroups() []api.Group {
	var gs []api.Group
	for _, g := range h.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].Name() < gs[j].Name() })
	return gs
}

// instanceIP is where an instance listens: its serving endpoint's IP, or
// this host's loopback.
func instanceIP(g api.Group, id string) string {
	for _, e := range g.Snapshot().Serving {
		if e.ID == id && e.IP != "" {
			return e.IP
		}
	}
	return "127.0.0.1"
}

// ec2InstanceOf is an instance as DescribeInstances shows it.
func ec2InstanceOf(r instanceRef) ec2Instance {
	cfg := r.group.Config()
	tags := []ec2Tag{{"aws:autoscaling:groupName", cfg.Name}}
	for _, k := range slices.Sorted(maps.Keys(cfg.Tags)) {
		tags = append(tags, ec2Tag{k, cfg.Tags[k]})
	}
	return ec2Instance{
		InstanceID: r.in.ID, ImageID: awsid.Image(cfg.Name),
		State: ec2StateOf(r.in.State), InstanceType: "autoheal.process",
		LaunchTime: r.in.LaunchedAt.UTC().Format(time.RFC3339), AvailabilityZone: awsid.Zone,
		PrivateIP: instanceIP(r.group, r.in.ID), Tags: tags,
	}
}

// selectInstances applies InstanceId.N and the filters EC2 scripts use:
// instance-id, instance-state-name, tag:KEY, tag-key and
// tag:aws:autoscaling:groupName. Named instances that do not exist are
// InvalidInstanceID.NotFound, as on EC2.
func (h *Handler) selectInstances(p url.Values) ([]instanceRef, error) {
	ids := list(p, "InstanceId")
	all := h.liveInstances()
	for _, id := range ids {
		if !slices.ContainsFunc(all, func(r instanceRef) bool { return r.in.ID == id }) {
			return nil, invalid("InvalidInstanceID.NotFound", "the instance ID '%s' does not exist", id)
		}
	}
	filters := members(p, "Filter")
	var out []instanceRef
	for _, r := range all {
		if len(ids) > 0 && !slices.Contains(ids, r.in.ID) {
			continue
		}
		ok := true
		for _, f := range filters {
			match, err := filterMatches(f.Get("Name"), list(f, "Value"), ec2InstanceOf(r))
			if err != nil {
				return nil, err
			}
			ok = ok && match
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// filterMatches applies one EC2 filter to an instance.
func filterMatches(name string, values []string, in ec2Instance) (bool, error) {
	var have []string
	switch {
	case name == "instance-id":
		have = []string{in.InstanceID}
	case name == "instance-state-name":
		have = []string{in.State.Name}
	case name == "availability-zone":
		have = []string{in.AvailabilityZone}
	case name == "private-ip-address":
		have = []string{in.PrivateIP}
	case name == "tag-key":
		for _, t := range in.Tags {
			have = append(have, t.Key)
		}
	case strings.HasPrefix(name, "tag:"):
		for _, t := range in.Tags {
			if t.Key == strings.TrimPrefix(name, "tag:") {
				have = append(have, t.Value)
			}
		}
	default:
		return false, invalid("InvalidParameterValue", "the filter '%s' is not supported here (instance-id, instance-state-name, availability-zone, private-ip-address, tag:KEY, tag-key)", name)
	}
	for _, v := range values {
		for _, x := range have {
			if globMatch(v, x) {
				return true, nil
			}
		}
	}
	return false, nil
}

// globMatch is EC2's filter wildcards: * any run, ? one character.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
	}
}

func (h *Handler) describeInstances(c *call) (any, error) {
	refs, err := h.selectInstances(c.params)
	if err != nil {
		return nil, err
	}
	res := &describeInstancesResult{}
	// One reservation per group, as an Auto Scaling group's launches.
	byGroup := map[string]int{}
	for _, r := range refs {
		i, ok := byGroup[r.group.Name()]
		if !ok {
			i = len(res.Reservations)
			byGroup[r.group.Name()] = i
			res.Reservations = append(res.Reservations, ec2Reservation{
				ReservationID: awsid.Reservation(r.group.Name()), OwnerID: awsid.Account})
		}
		res.Reservations[i].Instances = append(res.Reservations[i].Instances, ec2InstanceOf(r))
	}
	return res, nil
}
