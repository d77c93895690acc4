package awsapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/group"
)

// EC2's instance status, power actions, addresses and volumes.

type instanceStatusItem struct {
	InstanceID       string   `xml:"instanceId"`
	AvailabilityZone string   `xml:"availabilityZone"`
	State            ec2State `xml:"instanceState"`
	SystemStatus     string   `xml:"systemStatus>status"`
	InstanceStatus   string   `xml:"instanceStatus>status"`
	ReachStatus      string   `xml:"instanceStatus>details>item>status"`
	ReachName        string   `xml:"instanceStatus>details>item>name"`
}

type describeInstanceStatusResult struct {
	ec2Result
	Statuses []instanceStatusItem `xml:"instanceStatusSet>item"`
}

// instanceStatusOf is EC2's status check of an instance: its health checks.
func instanceStatusOf(health string) string {
	switch health {
	case "healthy":
		return "ok"
	case "unhealthy":
		return "impaired"
	default:
		return "initializing"
	}
}

func (h *Handler) describeInstanceStatus(c *call) (any, error) {
	refs, err := h.selectInstances(c.params)
	if err != nil {
		return nil, err
	}
	all := c.params.Get("IncludeAllInstances") == "true"
	res := &describeInstanceStatusResult{}
	for _, r := range refs {
		st := ec2StateOf(r.in.State)
		if st.Name != "running" && !all {
			// As EC2: only running instances unless IncludeAllInstances.
			continue
		}
		is := instanceStatusOf(r.in.Health)
		reach := map[string]string{"ok": "passed", "impaired": "failed"}[is]
		if reach == "" {
			reach = "initializing"
		}
		res.Statuses = append(res.Statuses, instanceStatusItem{InstanceID: r.in.ID, AvailabilityZone: awsid.Zone, State: st,
			SystemStatus: "ok", InstanceStatus: is, ReachStatus: reach, ReachName: "reachability"})
	}
	return res, nil
}

// namedInstances are the instances InstanceId.N names, all live.
func (h *Handler) namedInstances(c *call) ([]instanceRef, error) {
	ids := list(c.params, "InstanceId")
	if len(ids) == 0 {
		return nil, invalid("MissingParameter", "the request must contain the parameter InstanceId")
	}
	var out []instanceRef
	for _, id := range ids {
		g, ok := h.groupOf(id)
		if !ok {
			return nil, invalid("InvalidInstanceID.NotFound", "the instance ID '%s' does not exist", id)
		}
		in, _ := g.Instance(id)
		out = append(out, instanceRef{g, in})
	}
	return out, nil
}

type booleanResult struct {
	ec2Result
	Return bool `xml:"return"`
}

// rebootInstances restarts each instance in place, as autoheal's restart:
// the same instance, volumes and addresses (EC2's reboot keeps them too).
func (h *Handler) rebootInstances(c *call) (any, error) {
	refs, err := h.namedInstances(c)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if err := r.group.Restart(c.ctx, r.in.ID); err != nil {
			return nil, groupError(err, r.in.ID)
		}
	}
	return &booleanResult{Return: true}, nil
}

type stateChange struct {
	InstanceID    string   `xml:"instanceId"`
	CurrentState  ec2State `xml:"currentState"`
	PreviousState ec2State `xml:"previousState"`
}

type stateChangeResult struct {
	ec2Result
	Instances []stateChange `xml:"instancesSet>item"`
}

// terminateInstances terminates each instance; its group replaces it (as
// an Auto Scaling group does: the desired capacity stays).
func (h *Handler) terminateInstances(c *call) (any, error) {
	refs, err := h.namedInstances(c)
	if err != nil {
		return nil, err
	}
	res := &stateChangeResult{}
	for _, r := range refs {
		if err := r.group.Terminate(c.ctx, r.in.ID, false); err != nil {
			return nil, groupError(err, r.in.ID)
		}
		res.Instances = append(res.Instances, stateChange{InstanceID: r.in.ID, CurrentState: ec2State{32, "shutting-down"}, PreviousState: ec2StateOf(r.in.State)})
	}
	return res, nil
}

// stopInstances does what stopping an Auto Scaling group's instance does
// on AWS: the group's health check finds it not running and replaces it
// (the desired capacity stays). autoheal does it at once: the instance is
// terminated and replaced, its volumes and addresses going to the new one.
// To turn a pet off and keep it off, set the group's capacity to 0 (seed
// 001's night shutdown).
func (h *Handler) stopInstances(c *call) (any, error) {
	refs, err := h.namedInstances(c)
	if err != nil {
		return nil, err
	}
	res := &stateChangeResult{}
	for _, r := range refs {
		if err := r.group.Terminate(c.ctx, r.in.ID, false); err != nil {
			return nil, groupError(err, r.in.ID)
		}
		res.Instances = append(res.Instances, stateChange{InstanceID: r.in.ID, CurrentState: ec2State{64, "stopping"}, PreviousState: ec2StateOf(r.in.State)})
	}
	return res, nil
}

// startInstances: a live instance is running (or pending) already, and
// EC2 answers a start of a running instance with its state; a stopped one
// was replaced (stopInstances), so there is none to start.
func (h *Handler) startInstances(c *call) (any, error) {
	ids := list(c.params, "InstanceId")
	if len(ids) == 0 {
		return nil, invalid("MissingParameter", "the request must contain the parameter InstanceId")
	}
	res := &stateChangeResult{}
	for _, id := range ids {
		g, ok := h.groupOf(id)
		if !ok {
			if h.knownInstance(c, id) {
				return nil, invalid("IncorrectInstanceState", "the instance '%s' is not in a state from which it can be started: "+
					"it was stopped or terminated, and its Auto Scaling group replaced it", id)
			}
			return nil, invalid("InvalidInstanceID.NotFound", "the instance ID '%s' does not exist", id)
		}
		in, _ := g.Instance(id)
		st := ec2StateOf(in.State)
		res.Instances = append(res.Instances, stateChange{InstanceID: id, CurrentState: st, PreviousState: st})
	}
	return res, nil
}

// knownInstance reports whether id was an instance (its record is kept
// after it ended).
func (h *Handler) knownInstance(c *call, id string) bool {
	if h.deps.Journal == nil {
		return false
	}
	_, err := h.deps.Journal.Instance(c.ctx, id)
	return err == nil
}

// groupError maps a group's errors to EC2's.
func groupError(err error, id string) error {
	switch {
	case errors.Is(err, group.ErrNotFound):
		return invalid("InvalidInstanceID.NotFound", "the instance ID '%s' does not exist", id)
	case errors.Is(err, group.ErrInvalid):
		return invalid("IncorrectInstanceState", "instance %s: %v", id, err)
	}
	return err
}

// address is one of a group's addresses as EC2 shows it.
type address struct {
	g    api.Group
	info group.AddressInfo
	ip   string
	kind string
}

func (h *Handler) addresses() []address {
	var out []address
	for _, g := range h.sortedGroups() {
		cfg := g.Config()
		snap := g.Snapshot()
		for _, a := range cfg.Addresses {
			ad := address{g: g, kind: a.Kind, info: group.AddressInfo{Name: a.Name, Listen: a.Listen}}
			for _, ai := range snap.Addresses {
				if ai.Name == a.Name {
					ad.info = ai
				}
			}
			if a.IP != "" {
				ip, _, _ := net.ParseCIDR(a.IP)
				ad.ip = ip.String()
			} else if host, _, err := net.SplitHostPort(a.Listen); err == nil {
				ad.ip = host
				if ad.ip == "" {
					ad.ip = "0.0.0.0"
				}
			}
			if ad.info.Holder == "" {
				for _, at := range snap.Attachments {
					if at.Kind == "address" && at.Name == a.Name {
						ad.info.Holder = at.Holder
					}
				}
			}
			out = append(out, ad)
		}
	}
	return out
}

type addressItem struct {
	PublicIP      string   `xml:"publicIp"`
	AllocationID  string   `xml:"allocationId"`
	Domain        string   `xml:"domain"`
	InstanceID    string   `xml:"instanceId,omitempty"`
	AssociationID string   `xml:"associationId,omitempty"`
	PrivateIP     string   `xml:"privateIpAddress,omitempty"`
	Tags          []ec2Tag `xml:"tagSet>item"`
}

type describeAddressesResult struct {
	ec2Result
	Addresses []addressItem `xml:"addressesSet>item"`
}

func (a address) item() addressItem {
	alloc := awsid.Allocation(a.g.Name(), a.info.Name)
	it := addressItem{PublicIP: a.ip, AllocationID: alloc, Domain: "vpc",
		Tags: []ec2Tag{{"Name", a.info.Name}, {"aws:autoscaling:groupName", a.g.Name()}}}
	if a.info.Holder != "" {
		it.InstanceID, it.AssociationID = a.info.Holder, awsid.Association(alloc, a.info.Holder)
		it.PrivateIP = instanceIP(a.g, a.info.Holder)
	}
	return it
}

func (h *Handler) describeAddresses(c *call) (any, error) {
	allocs, ips := list(c.params, "AllocationId"), list(c.params, "PublicIp")
	res := &describeAddressesResult{}
	all := h.addresses()
	for _, want := range allocs {
		if !slices.ContainsFunc(all, func(a address) bool { return a.item().AllocationID == want }) {
			return nil, invalid("InvalidAllocationID.NotFound", "the allocation ID '%s' does not exist", want)
		}
	}
	for _, a := range all {
		it := a.item()
		if len(allocs) > 0 && !slices.Contains(allocs, it.AllocationID) || len(ips) > 0 && !slices.Contains(ips, it.PublicIP) {
			continue
		}
		res.Addresses = append(res.Addresses, it)
	}
	return res, nil
}

// findAddress is the address AllocationId (or PublicIp) names.
func (h *Handler) findAddress(c *call) (address, error) {
	alloc, ip := c.params.Get("AllocationId"), c.params.Get("PublicIp")
	for _, a := range h.addresses() {
		if alloc != "" && a.item().AllocationID == alloc || alloc == "" && ip != "" && a.ip == ip {
			return a, nil
		}
	}
	if alloc == "" && ip == "" {
		return address{}, invalid("MissingParameter", "the request must contain the parameter AllocationId (or PublicIp)")
	}
	return address{}, invalid("InvalidAllocationID.NotFound", "the allocation ID '%s' does not exist", alloc+ip)
}

type associateResult struct {
	ec2Result
	AssociationID string `xml:"associationId"`
}

// associateAddress: autoheal keeps a group's address on the group's
// serving instance, fenced (docs/design.md §6), so an association is
// what autoheal already did, not something a caller moves. Associating
// an address with the instance that holds it succeeds (seed 001's user
// data does exactly that at boot); with another instance it is refused
// as AWS refuses an address already associated.
func (h *Handler) associateAddress(c *call) (any, error) {
	a, err := h.findAddress(c)
	if err != nil {
		return nil, err
	}
	id := c.params.Get("InstanceId")
	if id == "" {
		return nil, invalid("MissingParameter", "the request must contain the parameter InstanceId")
	}
	g, ok := h.groupOf(id)
	if !ok {
		return nil, invalid("InvalidInstanceID.NotFound", "the instance ID '%s' does not exist", id)
	}
	if g.Name() != a.g.Name() {
		return nil, invalid("InvalidParameterCombination", "address %s (%s) belongs to group %s; instance %s is in group %s: autoheal moves an address only within its group",
			a.item().AllocationID, a.info.Name, a.g.Name(), id, g.Name())
	}
	if a.info.Holder == id {
		return &associateResult{AssociationID: awsid.Association(a.item().AllocationID, id)}, nil
	}
	holder := a.info.Holder
	if holder == "" {
		holder = "no instance yet"
	}
	return nil, invalid("Resource.AlreadyAssociated", "address %s (%s) is held by %s: autoheal associates it with the group's serving instance when it starts, and moves it only with a fenced heal",
		a.item().AllocationID, a.info.Name, holder)
}

func (h *Handler) disassociateAddress(c *call) (any, error) {
	assoc := c.params.Get("AssociationId")
	if assoc == "" {
		return nil, invalid("MissingParameter", "the request must contain the parameter AssociationId")
	}
	for _, a := range h.addresses() {
		if it := a.item(); it.AssociationID == assoc {
			return nil, invalid("InvalidParameterValue", "address %s (%s) stays with %s while it serves: scale group %s to 0 to release it",
				it.AllocationID, a.info.Name, a.info.Holder, a.g.Name())
		}
	}
	return nil, invalid("InvalidAssociationID.NotFound", "the association ID '%s' does not exist", assoc)
}

// volume is one of a group's volumes.
type volume struct {
	g                 api.Group
	name, mount, kind string
	holder            string
}

func (h *Handler) volumes() []volume {
	var out []volume
	for _, g := range h.sortedGroups() {
		snap := g.Snapshot()
		for _, v := range g.Config().Volumes {
			vol := volume{g: g, name: v.Name, mount: v.MountPath, kind: v.Kind}
			for _, at := range snap.Attachments {
				if at.Kind == "volume" && at.Name == v.Name {
					vol.holder = at.Holder
				}
			}
			out = append(out, vol)
		}
	}
	return out
}

type volumeAttachment struct {
	VolumeID   string `xml:"volumeId"`
	InstanceID string `xml:"instanceId"`
	Device     string `xml:"device"`
	Status     string `xml:"status"`
}

type volumeItem struct {
	VolumeID         string             `xml:"volumeId"`
	Size             int                `xml:"size"`
	AvailabilityZone string             `xml:"availabilityZone"`
	Status           string             `xml:"status"`
	VolumeType       string             `xml:"volumeType"`
	Attachments      []volumeAttachment `xml:"attachmentSet>item"`
	Tags             []ec2Tag           `xml:"tagSet>item"`
}

func (v volume) item() volumeItem {
	id := awsid.Volume(v.g.Name(), v.name)
	it := volumeItem{VolumeID: id, AvailabilityZone: awsid.Zone, Status: "available", VolumeType: "autoheal-" + cmpOr(v.kind, "local"),
		Tags: []ec2Tag{{"Name", v.name}, {"aws:autoscaling:groupName", v.g.Name()}}}
	if v.holder != "" {
		it.Status = "in-use"
		it.Attachments = []volumeAttachment{{VolumeID: id, InstanceID: v.holder, Device: cmpOr(v.mount, "AUTOHEAL_VOLUME_"+strings.ToUpper(v.name)), Status: "attached"}}
	}
	return it
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

type describeVolumesResult struct {
	ec2Result
	Volumes []volumeItem `xml:"volumeSet>item"`
}

func (h *Handler) describeVolumes(c *call) (any, error) {
	ids := list(c.params, "VolumeId")
	all := h.volumes()
	for _, want := range ids {
		if !slices.ContainsFunc(all, func(v volume) bool { return v.item().VolumeID == want }) {
			return nil, invalid("InvalidVolume.NotFound", "the volume '%s' does not exist", want)
		}
	}
	res := &describeVolumesResult{}
	for _, v := range all {
		if it := v.item(); len(ids) == 0 || slices.Contains(ids, it.VolumeID) {
			res.Volumes = append(res.Volumes, it)
		}
	}
	return res, nil
}

func (h *Handler) findVolume(c *call) (volume, error) {
	id := c.params.Get("VolumeId")
	if id == "" {
		return volume{}, invalid("MissingParameter", "the request must contain the parameter VolumeId")
	}
	for _, v := range h.volumes() {
		if v.item().VolumeID == id {
			return v, nil
		}
	}
	return volume{}, invalid("InvalidVolume.NotFound", "the volume '%s' does not exist", id)
}

type attachmentResult struct {
	ec2Result
	volumeAttachment
}

// attachVolume: autoheal attaches a group's volume to its instance at
// launch, under a fencing token (docs/design.md §6). Attaching it to the
// instance that holds it succeeds; a volume still held by another
// instance is refused with VolumeInUse, as EC2 refuses an attached
// volume; one held by nobody is attached by the group's next launch, not
// by hand.
func (h *Handler) attachVolume(c *call) (any, error) {
	v, err := h.findVolume(c)
	if err != nil {
		return nil, err
	}
	id := c.params.Get("InstanceId")
	g, ok := h.groupOf(id)
	if !ok {
		return nil, invalid("InvalidInstanceID.NotFound", "the instance ID '%s' does not exist", id)
	}
	vid := v.item().VolumeID
	switch {
	case v.holder == id:
		return &attachmentResult{volumeAttachment: v.item().Attachments[0]}, nil
	case v.holder != "":
		return nil, invalid("VolumeInUse", "%s is already attached to an instance (%s): autoheal fences a volume to one instance at a time", vid, v.holder)
	case g.Name() != v.g.Name():
		return nil, invalid("InvalidParameterCombination", "volume %s belongs to group %s; instance %s is in group %s", vid, v.g.Name(), id, g.Name())
	default:
		return nil, invalid("IncorrectState", "volume %s is attached by group %s's next launch, under a new fencing token, not by hand", vid, v.g.Name())
	}
}

// detachVolume: a volume stays with its instance while it runs (a
// detached pet would lose its data under it); terminating the instance
// releases it.
func (h *Handler) detachVolume(c *call) (any, error) {
	v, err := h.findVolume(c)
	if err != nil {
		return nil, err
	}
	if v.holder == "" {
		return nil, invalid("IncorrectState", "volume %s is available (attached to no instance)", v.item().VolumeID)
	}
	if id := c.params.Get("InstanceId"); id != "" && id != v.holder {
		return nil, invalid("InvalidAttachment.NotFound", "volume %s is not attached to %s", v.item().VolumeID, id)
	}
	return nil, &apiError{Status: http.StatusBadRequest, Code: "IncorrectState", Msg: fmt.Sprintf(
		"volume %s is in use by %s, which is running: terminate the instance (aws ec2 terminate-instances) and autoheal releases it, fenced", v.item().VolumeID, v.holder)}
}
