// Package event defines the journal's vocabulary: every kind of event the
// controller records, and for each kind the typed data stored with it.
//
// An event's kind is its data's type (Data.Kind), so a producer cannot
// journal one kind with another's fields, and a consumer (remediation,
// incidents, metrics, the dashboard, the CLI) reads fields, never the
// message: Message is for people and may change wording at any time.
// Data is stored as JSON beside the event and decoded back into its typed
// struct by Decode; kinds unknown to this build decode as Raw.
//
// The package knows nothing of storage, groups or HTTP; it sits below
// every package that journals or reads the journal (see docs/design.md).
package event
