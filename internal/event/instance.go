package event

// Kinds of an instance's lifecycle, its attachments and its group.
const (
	KindInstanceState       Kind = "instance.state"
	KindInstanceExit        Kind = "instance.exit"
	KindInstanceFenced      Kind = "instance.fenced"
	KindInstanceHealth      Kind = "instance.health"
	KindInstanceHeal        Kind = "instance.heal"
	KindInstanceHook        Kind = "instance.hook"
	KindInstanceUserData    Kind = "instance.user_data"
	KindInstanceAdopt       Kind = "instance.adopt"
	KindVolumeAttach        Kind = "volume.attach"
	KindVolumeDetach        Kind = "volume.detach"
	KindVolumeInit          Kind = "volume.init"
	KindVolumePin           Kind = "volume.pin"
	KindAddressAssociate    Kind = "address.associate"
	KindAddressDisassociate Kind = "address.disassociate"
	KindGroupScale          Kind = "group.scale"
	KindGroupImpaired       Kind = "group.impaired"
	KindGroupActive         Kind = "group.active"
	KindGroupError          Kind = "group.error"
)

// InstanceState is a lifecycle transition of an instance.
type InstanceState struct {
	// From is the state left; empty for a new instance's first state.
	From string `json:"from"`
	To   string `json:"to"`
	// Cause says why, for people.
	Cause string `json:"cause"`
	// Replaces is set on a replacement's first state: the failed
	// instance it replaces.
	Replaces string `json:"replaces,omitempty"`
	// ReplacedBy is set when a failed instance becomes Terminating
	// because a replacement takes its place.
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// InstanceExit is the exit of an instance's application.
type InstanceExit struct {
	// Code is the exit code, -1 when killed by a signal or unknown.
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
	// Error is set when the application could not be started at all.
	Error string `json:"error,omitempty"`
	// Planned is true when the exit was asked for (a stop, a restart).
	Planned bool `json:"planned,omitempty"`
}

// InstanceFenced confirms that every process of an instance is gone: its
// volumes and addresses may move.
type InstanceFenced struct {
	// Code, Signal and Error are the application's exit status.
	Code   int    `json:"code"`
	Signal string `json:"signal,omitempty"`
	Error  string `json:"error,omitempty"`
	// DurationMS is how long the fence took, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
}

// InstanceHealth is a health check's transition.
type InstanceHealth struct {
	// Check is the index of the check in the group's health_checks.
	Check       int    `json:"check"`
	Type        string `json:"type"`
	Status      string `json:"status"`
	Consecutive int    `json:"consecutive,omitempty"`
	Output      string `json:"output,omitempty"`
}

// InstanceHeal is the heal policy's decision on a failed instance.
type InstanceHeal struct {
	// Action is restart, replace or impair.
	Action  string `json:"action"`
	DelayMS int64  `json:"delay_ms"`
	// NotBefore is when the heal may act, after its backoff (RFC 3339);
	// a restarted controller resumes the wait from it.
	NotBefore string `json:"not_before,omitempty"`
	Failure   string `json:"failure"`
	Reason    string `json:"reason,omitempty"`
}

// InstanceHook is the outcome of a lifecycle hook.
type InstanceHook struct {
	Hook string `json:"hook"`
	// Phase is launch or terminate.
	Phase    string `json:"kind"`
	ExitCode int    `json:"exit_code"`
	TimedOut bool   `json:"timed_out,omitempty"`
	OK       bool   `json:"ok"`
	Output   string `json:"output,omitempty"`
	// Interrupted: a controller died while the hook ran (or was about to
	// run it); it is not run again and its default_result applies, as when
	// a hook's heartbeat runs out.
	Interrupted bool `json:"interrupted,omitempty"`
}

// InstanceUserData is the outcome of an instance's user_data script.
type InstanceUserData struct {
	ExitCode int    `json:"exit_code"`
	TimedOut bool   `json:"timed_out,omitempty"`
	OK       bool   `json:"ok"`
	Output   string `json:"output,omitempty"`
	// Interrupted: a controller died while it ran; it is not run again and
	// the launch fails.
	Interrupted bool `json:"interrupted,omitempty"`
}

// InstanceAdopt is what a starting controller found of an instance an
// earlier run left behind.
type InstanceAdopt struct {
	// State is the instance's recorded state.
	State string `json:"state"`
	// Alive is true when its application still runs and was re-adopted.
	Alive bool `json:"alive"`
	Pid   int  `json:"pid,omitempty"`
	// Exit is the status of an application that ended meanwhile.
	Exit string `json:"exit,omitempty"`
}

// VolumeAttach gives a volume to an instance with a new fencing token.
type VolumeAttach struct {
	Volume         string `json:"volume"`
	Token          int64  `json:"token"`
	PreviousHolder string `json:"previous_holder,omitempty"`
}

// VolumeDetach releases a volume.
type VolumeDetach struct {
	Volume string `json:"volume"`
	Token  int64  `json:"token"`
}

// VolumePin pins a group with local volumes to the cluster host where they
// live: its instances run there only.
type VolumePin struct {
	Host string `json:"host"`
}

// VolumeInit is the outcome of a volume's init script.
type VolumeInit struct {
	Volume   string `json:"volume"`
	ExitCode int    `json:"exit_code"`
	TimedOut bool   `json:"timed_out,omitempty"`
	OK       bool   `json:"ok"`
	Output   string `json:"output,omitempty"`
	// Interrupted: a controller died while it ran; it is not run again
	// for this launch, which fails, and the volume stays uninitialised.
	Interrupted bool `json:"interrupted,omitempty"`
}

// AddressAssociate gives an address to an instance.
type AddressAssociate struct {
	Address        string `json:"address"`
	PreviousHolder string `json:"previous_holder,omitempty"`
}

// AddressDisassociate takes an address from an instance: Drained when it
// only stops routing new connections to it (the record changes later).
type AddressDisassociate struct {
	Address string `json:"address"`
	Drained bool   `json:"drained,omitempty"`
}

// GroupScale is a change of a group's capacity.
type GroupScale struct {
	Min     int `json:"min"`
	Max     int `json:"max"`
	Desired int `json:"desired"`
	// Prev is the capacity before; nil when the group was created.
	Prev *Capacity `json:"prev,omitempty"`
	// Cause is created, config, scale or terminate.
	Cause string `json:"cause"`
}

// Capacity is a group's min, max and desired.
type Capacity struct {
	Min     int `json:"min"`
	Max     int `json:"max"`
	Desired int `json:"desired"`
}

// GroupImpaired marks a group that stopped healing.
type GroupImpaired struct {
	Reason string `json:"reason"`
}

// GroupActive clears Impaired.
type GroupActive struct {
	Reason string `json:"reason"`
}

// GroupError is an operation of a group that failed and will be retried
// or healed.
type GroupError struct {
	// Op names the operation: allocate_ports, attach_volume,
	// detach_volume, fence.
	Op    string `json:"op"`
	Error string `json:"error"`
}

func (InstanceState) Kind() Kind       { return KindInstanceState }
func (InstanceExit) Kind() Kind        { return KindInstanceExit }
func (InstanceFenced) Kind() Kind      { return KindInstanceFenced }
func (InstanceHealth) Kind() Kind      { return KindInstanceHealth }
func (InstanceHeal) Kind() Kind        { return KindInstanceHeal }
func (InstanceHook) Kind() Kind        { return KindInstanceHook }
func (InstanceUserData) Kind() Kind    { return KindInstanceUserData }
func (InstanceAdopt) Kind() Kind       { return KindInstanceAdopt }
func (VolumeAttach) Kind() Kind        { return KindVolumeAttach }
func (VolumeDetach) Kind() Kind        { return KindVolumeDetach }
func (VolumeInit) Kind() Kind          { return KindVolumeInit }
func (VolumePin) Kind() Kind           { return KindVolumePin }
func (AddressAssociate) Kind() Kind    { return KindAddressAssociate }
func (AddressDisassociate) Kind() Kind { return KindAddressDisassociate }
func (GroupScale) Kind() Kind          { return KindGroupScale }
func (GroupImpaired) Kind() Kind       { return KindGroupImpaired }
func (GroupActive) Kind() Kind         { return KindGroupActive }
func (GroupError) Kind() Kind          { return KindGroupError }

func init() {
	register[InstanceState]()
	register[InstanceExit]()
	register[InstanceFenced]()
	register[InstanceHealth]()
	register[InstanceHeal]()
	register[InstanceHook]()
	register[InstanceUserData]()
	register[InstanceAdopt]()
	register[VolumeAttach]()
	register[VolumeDetach]()
	register[VolumeInit]()
	register[VolumePin]()
	register[AddressAssociate]()
	register[AddressDisassociate]()
	register[GroupScale]()
	register[GroupImpaired]()
	register[GroupActive]()
	register[GroupError]()
}
