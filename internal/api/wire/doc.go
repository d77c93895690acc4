// Package wire holds the JSON shapes of autoheal's HTTP API: the request
// bodies, and the answers as a client decodes them. The CLI (and any Go
// client) depends on these and nothing of the controller's packages.
//
// The handlers encode the controller's own types; the types here mirror
// their JSON field for field. TestWireMirrors (package api) fills each
// controller type, encodes it, decodes it here and encodes it again, and
// fails on any field lost: a field added to a controller type must be
// added here.
//
// It imports nothing of autoheal's and knows no behaviour beyond
// formatting.
package wire
