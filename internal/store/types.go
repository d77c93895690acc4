package store

import (
	"errors"
	"time"

	"github.com/autoheal/autoheal/internal/event"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by a compare-and-swap whose expected value no
// longer matches: someone else changed the record first.
var ErrConflict = errors.New("conflict")

// Event is one entry of the durable journal: its kind, a message for
// people and the kind's typed data (package event).
type Event = event.Event

// EventFilter selects events. Zero fields match everything.
type EventFilter struct {
	Group    string
	Instance string
	// AfterSeq returns only events with Seq > AfterSeq.
	AfterSeq int64
	// Limit is the maximum number returned, newest kept when Tail is true.
	Limit int
	// Tail returns the last Limit events (still in ascending order).
	Tail bool
}

// Instance is the durable record of one instance.
type Instance struct {
	ID    string `json:"id"`
	Group string `json:"group"`
	// State is a lifecycle state name: Pending, Pending:Wait,
	// Pending:Proceed, InService, Terminating, Terminating:Wait, Terminated.
	State string `json:"state"`
	// Health is initial, healthy or unhealthy.
	Health   string `json:"health"`
	Pid      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	// Ports maps address names to the instance port the application listens on.
	Ports      map[string]int `json:"ports,omitempty"`
	LaunchedAt time.Time      `json:"launched_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
	// TerminatedAt is set once the instance reached Terminated.
	TerminatedAt *time.Time `json:"terminated_at,omitempty"`
	// LastExit is the last exit status of its application, JSON encoded by
	// the caller (provider.ExitStatus).
	LastExit string `json:"last_exit,omitempty"`
	// Cause of the last state change.
	Cause string `json:"cause,omitempty"`
	// Host is the cluster host the instance runs on: "" for the
	// controller's own host (one host, or a group without placement).
	Host string `json:"host,omitempty"`
}

// Group is the durable state of a group (its capacity may differ from the
// config file after `autoheal scale`).
type Group struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // Active or Impaired
	Reason  string `json:"reason,omitempty"`
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	Desired int    `json:"desired"`
	// Heal is the heal policy's history, JSON encoded by the caller.
	Heal      string    `json:"-"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Attachment records which instance holds a volume or an address.
type Attachment struct {
	Kind  string `json:"kind"` // volume or address
	Group string `json:"group"`
	Name  string `json:"name"`
	// Holder is the instance id, empty when detached.
	Holder string `json:"holder"`
	// Token is the fencing token; it increases with every attach.
	Token     int64     `json:"token"`
	UpdatedAt time.Time `json:"updated_at"`
}
