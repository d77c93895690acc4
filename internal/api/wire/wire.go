package wire

import (
	"fmt"
	"strconv"
	"time"

	"github.com/autoheal/autoheal/internal/event"
)

// Error is the JSON body of every error response.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// TokenFile is where the local admin token is; only in a 401 answered
	// to a caller on the controller's host.
	TokenFile string `json:"token_file,omitempty"`
}

// Version is the body of GET /v1/version.
type Version struct {
	Version string    `json:"version"`
	Started time.Time `json:"started"`
}

// Status is the body of GET /v1/status.
type Status struct {
	Groups    []Group    `json:"groups"`
	Instances []Instance `json:"instances"`
	// State is whether the state dir takes writes; absent from a
	// controller that does not say.
	State *StateDir `json:"state,omitempty"`
	// AWSIDs are the AWS-shaped ids of each group's objects, as the AWS
	// endpoint names them.
	AWSIDs map[string]AWSIDs `json:"aws_ids,omitempty"`
}

// AWSIDs are one group's AWS-shaped ids: its Auto Scaling group ARN, and
// its volumes' and addresses' ids by name.
type AWSIDs struct {
	ARN       string            `json:"arn"`
	Volumes   map[string]string `json:"volumes,omitempty"`
	Addresses map[string]string `json:"addresses,omitempty"`
}

// StateDir says whether the controller's state dir takes writes. While it
// does not (a full disk, a read-only file system), groups hold still: no
// launch, heal or termination, since each records before it acts;
// instances keep running and are served, and health checks go on.
type StateDir struct {
	Dir      string `json:"dir"`
	Writable bool   `json:"writable"`
	// Error is why it takes no writes ("no space left on device").
	Error string `json:"error,omitempty"`
	// Since is when it stopped taking writes, or when it took them again.
	Since *time.Time `json:"since,omitempty"`
}

// String is "ok" or "degraded (state dir DIR: ERROR since T)".
func (s StateDir) String() string {
	if s.Writable {
		return "ok"
	}
	since := ""
	if s.Since != nil {
		since = " since " + s.Since.Local().Format(time.RFC3339)
	}
	return fmt.Sprintf("degraded (state dir %s: %s%s)", s.Dir, s.Error, since)
}

// Group is a group's snapshot: capacity, status, instances, attachments
// and addresses.
type Group struct {
	Name        string       `json:"name"`
	Status      string       `json:"status"`
	Reason      string       `json:"reason,omitempty"`
	Min         int          `json:"min"`
	Max         int          `json:"max"`
	Desired     int          `json:"desired"`
	Instances   []Instance   `json:"instances"`
	Attachments []Attachment `json:"attachments"`
	Addresses   []Address    `json:"addresses"`
}

// Address is one of a group's stable addresses.
type Address struct {
	Name   string `json:"name"`
	Listen string `json:"listen"`
	Mode   string `json:"mode"`
	Holder string `json:"holder,omitempty"`
}

// Attachment is a volume's or address's holder and fencing token.
type Attachment struct {
	Kind      string    `json:"kind"`
	Group     string    `json:"group"`
	Name      string    `json:"name"`
	Holder    string    `json:"holder"`
	Token     int64     `json:"token"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Instance is an instance's record.
type Instance struct {
	ID           string         `json:"id"`
	Group        string         `json:"group"`
	State        string         `json:"state"`
	Health       string         `json:"health"`
	Pid          int            `json:"pid,omitempty"`
	Restarts     int            `json:"restarts"`
	Ports        map[string]int `json:"ports,omitempty"`
	LaunchedAt   time.Time      `json:"launched_at"`
	UpdatedAt    time.Time      `json:"updated_at"`
	TerminatedAt *time.Time     `json:"terminated_at,omitempty"`
	// LastExit is the last exit status of its application, JSON encoded
	// (ExitStatus).
	LastExit string `json:"last_exit,omitempty"`
	Cause    string `json:"cause,omitempty"`
	// Host is the cluster host the instance runs on; absent for the
	// controller's own host.
	Host string `json:"host,omitempty"`
}

// ExitStatus is how an instance's application ended (Instance.LastExit).
type ExitStatus struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	Time   time.Time `json:"time"`
	Error  string    `json:"error,omitempty"`
	// Lost: the instance's cluster host left the cluster.
	Lost bool `json:"lost,omitempty"`
}

// String renders the status as events do: "exit 0", "killed by SIGKILL".
func (e ExitStatus) String() string {
	switch {
	case e.Error != "":
		return "failed: " + e.Error
	case e.Signal != "":
		return "killed by " + e.Signal
	default:
		return "exit " + strconv.Itoa(e.Code)
	}
}

// Event is one entry of the journal: its kind, a message for people and
// the kind's typed data (package event is the journal's vocabulary, shared
// by the controller and its clients).
type Event = event.Event

// ScaleRequest is the body of POST /v1/groups/{name}/scale. Absent fields
// are left unchanged.
type ScaleRequest struct {
	Min     *int `json:"min,omitempty"`
	Max     *int `json:"max,omitempty"`
	Desired *int `json:"desired,omitempty"`
}

// TerminateRequest is the body of POST /v1/instances/{id}/terminate.
type TerminateRequest struct {
	// Decrement lowers the group's desired capacity instead of replacing
	// the instance.
	Decrement bool `json:"decrement"`
}

// Metadata is what an instance learns about itself from its metadata
// endpoint (AUTOHEAL_METADATA_URL).
type Metadata struct {
	InstanceID string            `json:"instance_id"`
	Group      string            `json:"group"`
	State      string            `json:"state"`
	Ports      map[string]int    `json:"ports"`
	Addresses  map[string]string `json:"addresses"`
	Volumes    map[string]string `json:"volumes"`
	Parameters map[string]string `json:"parameters"`
	Tags       map[string]string `json:"tags,omitempty"`
}

// Capacity says whether a group is at its desired capacity with every
// live instance InService.
type Capacity struct {
	Desired   int  `json:"desired"`
	Live      int  `json:"live"`
	InService int  `json:"in_service"`
	Complete  bool `json:"complete"`
}

// SessionRequest is the body of POST /v1/session.
type SessionRequest struct {
	Token string `json:"token"`
}
