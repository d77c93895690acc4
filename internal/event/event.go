package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// Kind names a kind of event ("instance.state"). Kinds are stable: they
// are stored in the journal and filtered on by API clients.
type Kind string

// Data is the typed payload of one kind of event.
type Data interface {
	// Kind is the kind of event this data belongs to.
	Kind() Kind
}

// Event is one entry of the durable journal.
type Event struct {
	// Seq is assigned by the store when the event is appended, increasing.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Type is the event's kind; it always equals Data.Kind() when Data is
	// set.
	Type     Kind   `json:"type"`
	Group    string `json:"group,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Message is a sentence for people. Code must not parse it.
	Message string `json:"message"`
	// Data is the kind's typed payload.
	Data Data `json:"data,omitempty"`
}

// New returns an event of d's kind.
func New(group, instance, message string, d Data) Event {
	return Event{Type: d.Kind(), Group: group, Instance: instance, Message: message, Data: d}
}

// Check reports an event whose kind and data disagree.
func (e Event) Check() error {
	if e.Type == "" {
		return fmt.Errorf("event has no kind")
	}
	if e.Data != nil && e.Data.Kind() != e.Type {
		return fmt.Errorf("event %s carries %s data", e.Type, e.Data.Kind())
	}
	return nil
}

// UnmarshalJSON decodes an event with its data typed by its kind.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w struct {
		Seq      int64           `json:"seq"`
		Time     time.Time       `json:"time"`
		Type     Kind            `json:"type"`
		Group    string          `json:"group"`
		Instance string          `json:"instance"`
		Message  string          `json:"message"`
		Data     json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event{Seq: w.Seq, Time: w.Time, Type: w.Type, Group: w.Group, Instance: w.Instance, Message: w.Message}
	if len(w.Data) == 0 || string(w.Data) == "null" {
		return nil
	}
	d, err := Decode(w.Type, w.Data)
	if err != nil {
		return err
	}
	e.Data = d
	return nil
}

// Raw is the data of a kind this build does not know (written by a newer
// controller, or by a test): kept as it was, so nothing is lost.
type Raw struct {
	K    Kind
	JSON json.RawMessage
}

// Kind returns the kind the data was stored with.
func (r Raw) Kind() Kind { return r.K }

// MarshalJSON writes the data back as it was read.
func (r Raw) MarshalJSON() ([]byte, error) {
	if len(r.JSON) == 0 {
		return []byte("null"), nil
	}
	return r.JSON, nil
}

// decoders maps each known kind to the decoder of its data.
var decoders = map[Kind]func([]byte) (Data, error){}

// register makes T's kind decodable. Every payload type registers itself
// in this package's init; a kind registered twice is a programming error.
func register[T Data]() {
	var zero T
	k := zero.Kind()
	if _, dup := decoders[k]; dup {
		panic("event: kind registered twice: " + string(k))
	}
	decoders[k] = func(b []byte) (Data, error) {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("event %s: data: %w", k, err)
		}
		return v, nil
	}
}

// Decode returns the typed data of kind k stored as JSON b; Raw for a kind
// this build does not know.
func Decode(k Kind, b []byte) (Data, error) {
	dec, ok := decoders[k]
	if !ok {
		return Raw{K: k, JSON: append(json.RawMessage(nil), b...)}, nil
	}
	return dec(b)
}

// Known reports whether k is a kind of this build.
func Known(k Kind) bool {
	_, ok := decoders[k]
	return ok
}

// Kinds returns every known kind.
func Kinds() []Kind {
	out := make([]Kind, 0, len(decoders))
	for k := range decoders {
		out = append(out, k)
	}
	return out
}
