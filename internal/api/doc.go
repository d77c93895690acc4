// Package api serves autoheal's HTTP JSON API under /v1/ and provides the Go
// client the CLI uses. It translates requests into calls on the
// controller's components, through the small interfaces of deps.go, and
// error kinds into HTTP status codes in one place (writeError).
//
// It owns who may call: the controller's local admin token and the
// instances' credentials (credentials.go), the roles of configured tokens
// and of instances (auth.go), the checks that keep other web sites out
// (guard.go), and the bounds of request bodies (body.go). Its JSON shapes
// are in package wire, which the CLI uses without knowing the controller.
//
// It must not hold state of its own beyond live streams, and knows nothing
// of how the components it calls do their work.
package api
