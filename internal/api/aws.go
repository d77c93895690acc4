package api

import (
	"context"
	"net/http"
	"strings"
)

// The AWS-compatible endpoint (internal/awsapi, docs/design.md §14) is
// served on the API's listener under /aws, and the instances' metadata
// service under /imds/. Both pass the Host and origin rules (guard.go);
// the endpoint then checks the request's AWS signature itself, and the
// metadata service the instance's path key. A follower forwards both to
// the leader like any other call.

// AWSPrefix and IMDSPrefix are where they are served.
const (
	AWSPrefix  = "/aws"
	IMDSPrefix = "/imds/"
)

// Caller is who an AWS request comes from, as the endpoint identified it.
type Caller struct {
	// Name is what audit events call it: the access key's profile, or
	// instance:ID.
	Name string
	// Role is a config role, or "" for an instance whose group has none.
	Role string
	// Instance is set for an instance's credentials.
	Instance string
}

// Allows reports whether the caller's role may do what need requires.
func (c Caller) Allows(need string) bool { return roleRank[c.Role] >= roleRank[need] }

// AWSEndpoint is the AWS-compatible endpoint (*awsapi.Handler).
type AWSEndpoint interface {
	// Authenticate identifies the caller of a request to /aws or /imds/,
	// or answers it with AWS's error and returns false. It may read the
	// body; it leaves r.Body readable from the start.
	Authenticate(w http.ResponseWriter, r *http.Request) (Caller, bool)
	// Serve answers an authenticated request.
	Serve(w http.ResponseWriter, r *http.Request, c Caller)
}

type callerKey struct{}

// CallerOf returns the caller a forwarded request was authenticated as,
// and false for one that was not forwarded.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// isAWS reports the requests the AWS endpoint answers.
func isAWS(r *http.Request) bool {
	return r.URL.Path == AWSPrefix || strings.HasPrefix(r.URL.Path, AWSPrefix+"/") || strings.HasPrefix(r.URL.Path, IMDSPrefix)
}

// serveAWS applies the browser rules and the endpoint's authentication,
// then forwards (a follower) or serves.
func (h *Handler) serveAWS(w http.ResponseWriter, r *http.Request) {
	if err := h.guardAWS(r); err != nil {
		writeError(w, err)
		return
	}
	var c Caller
	if claim := r.Header.Get(forwardedHeader); claim != "" {
		p, err := h.forwarded(r, claim)
		if err != nil {
			writeError(w, err)
			return
		}
		c = Caller{Name: p.name, Role: p.role, Instance: p.instance}
	} else {
		var ok bool
		if c, ok = h.deps.AWS.Authenticate(w, r); !ok {
			return
		}
	}
	if h.deps.Forward != nil {
		h.forward(w, r, principal{name: c.Name, role: c.Role, instance: c.Instance})
		return
	}
	h.deps.AWS.Serve(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)), c)
}

// guardAWS is guard without the JSON rule: AWS's Query protocol posts
// forms. A page may post a form here, but never with a valid signature:
// Authorization cannot be set cross-site without a preflight.
func (h *Handler) guardAWS(r *http.Request) error {
	if !h.hostAllowed(r.Host) {
		return h.guard(r)
	}
	if !readOnly(r.Method) && !sameOrigin(r) {
		return h.guard(r)
	}
	return nil
}
