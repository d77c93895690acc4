package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/autoheal/autoheal/internal/api/wire"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// Every request but the dashboard's static files and its sign-in needs a
// credential, whether or not the config has tokens:
//
//   - the local admin token (Credentials, STATE/api-token), role admin;
//   - a configured token (auth.tokens), its role;
//   - an instance's credential (AUTOHEAL_INSTANCE_TOKEN), the role its
//     group is granted (groups[].api_role, default none) and, whatever the
//     role, what an instance needs: GET /v1/version, GET its own
//     /v1/instances/{id}/metadata and POST /v1/metrics for itself.
//
// A role allows what its rank or a lower one needs (requiredRole).

// TokenCookie is the cookie the browser UI carries its token in. Event
// streams (EventSource) cannot set headers, and a token in the query string
// would end up in logs and history, so the UI uses this cookie instead;
// ?token= is never accepted.
const TokenCookie = "autoheal_token"

// roleRank orders the roles: a token may do what its rank or a lower one
// needs. An instance without a role ranks 0.
var roleRank = map[string]int{config.RoleViewer: 1, config.RoleOperator: 2, config.RoleAdmin: 3}

// authToken is one configured token, known by its hash.
type authToken struct {
	name, role string
	sum        [sha256.Size]byte
	// valid is false for a hash that does not decode (a Config built in
	// code and not validated); such a token never matches.
	valid bool
}

func newTokens(tokens []config.Token) []authToken {
	var out []authToken
	for _, t := range tokens {
		at := authToken{name: t.Name, role: t.Role}
		if b, err := hex.DecodeString(t.SHA256); err == nil && len(b) == sha256.Size {
			copy(at.sum[:], b)
			at.valid = roleRank[t.Role] > 0
		}
		out = append(out, at)
	}
	return out
}

// lookup returns the configured token whose hash is the SHA-256 of
// presented. It compares in constant time against every configured hash,
// whichever matched, so the time it takes tells nothing about which token
// matched or how much of a hash did.
func lookup(tokens []authToken, presented string) (authToken, bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range tokens {
		eq := subtle.ConstantTimeCompare(sum[:], tokens[i].sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 || !tokens[found].valid {
		return authToken{}, false
	}
	return tokens[found], true
}

// HashToken returns the hex SHA-256 of a token: what the config's
// auth.tokens[].sha256 holds.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// principal is who a request comes from.
type principal struct {
	// name is what audit events call it: the token's name, local-admin,
	// or instance:ID.
	name string
	// role is a config role, or "" for an instance whose group has none.
	role string
	// instance is set for an instance's credential.
	instance string
}

// boundInstance is the instance whose metrics the caller may push: its
// own, unless its group is granted operator or more.
func (p principal) boundInstance() string {
	if p.instance != "" && roleRank[p.role] < roleRank[config.RoleOperator] {
		return p.instance
	}
	return ""
}

type principalKey struct{}

// caller returns who the request comes from ("" name for the public
// routes and in-process calls).
func caller(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// presentedToken returns the token of a request, from its Authorization
// header or else from the UI's cookie, and whether it came from the cookie.
func presentedToken(r *http.Request) (token string, cookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), false
		}
		return "", false
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// identify returns who presented a credential, if it is one.
func (h *Handler) identify(presented string) (principal, bool) {
	if c := h.deps.Credentials; c != nil {
		if c.isAdmin(presented) {
			return principal{name: localAdmin, role: config.RoleAdmin}, true
		}
		if id, ok := c.instanceOf(presented); ok {
			g, _, err := h.findInstance(id)
			if err != nil {
				// Its instance is gone: the credential died with it.
				return principal{}, false
			}
			return principal{name: "instance:" + id, role: g.Config().APIRole, instance: id}, true
		}
	}
	if t, ok := lookup(h.tokens, presented); ok {
		return principal{name: t.name, role: t.role}, true
	}
	return principal{}, false
}

// readOnly reports whether a method only reads.
func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// requiredRole is the least role that may make the request: viewer to read,
// operator to change state, admin for Go's profiler and under /v1/admin/
// (reserved).
func requiredRole(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/admin/"), strings.HasPrefix(r.URL.Path, "/debug/"):
		return config.RoleAdmin
	case readOnly(r.Method):
		return config.RoleViewer
	default:
		return config.RoleOperator
	}
}

// instanceMay reports the requests an instance's credential may always
// make, whatever its group's role: what an instance needs to know itself
// and report on itself. Nothing here changes the controller's state; the
// metric push is bound to the instance by putMetricData.
func instanceMay(r *http.Request, id string) bool {
	if readOnly(r.Method) {
		return r.URL.Path == "/v1/version" || r.URL.Path == "/v1/instances/"+id+"/metadata"
	}
	return r.Method == http.MethodPost && r.URL.Path == "/v1/metrics"
}

// authorize checks the request's credential and role.
func (h *Handler) authorize(r *http.Request) (principal, error) {
	if public(r) {
		return principal{}, nil
	}
	var p principal
	if claim := r.Header.Get(forwardedHeader); claim != "" {
		// From a follower, who checked the credential (forward.go).
		var err error
		if p, err = h.forwarded(r, claim); err != nil {
			return p, err
		}
	} else {
		presented, cookie := presentedToken(r)
		if presented == "" {
			return principal{}, fmt.Errorf("%w: send Authorization: Bearer TOKEN (autoheal --token, env AUTOHEAL_TOKEN)", errUnauthorized)
		}
		var ok bool
		p, ok = h.identify(presented)
		if !ok || (cookie && p.instance != "") {
			return principal{}, fmt.Errorf("%w: unknown token", errUnauthorized)
		}
	}
	need := requiredRole(r)
	if roleRank[p.role] >= roleRank[need] || (p.instance != "" && need != config.RoleAdmin && instanceMay(r, p.instance)) {
		return p, nil
	}
	if p.instance != "" {
		role := p.role
		if role == "" {
			role = "none"
		}
		return p, fmt.Errorf("%w: %s %s needs %s; the credential of instance %s has its group's api_role (%s), "+
			"and an instance may otherwise only read its own metadata and push its own metrics", errForbidden, r.Method, r.URL.Path, need, p.instance, role)
	}
	return p, fmt.Errorf("%w: token %s has role %s; %s %s needs %s", errForbidden, p.name, p.role, r.Method, r.URL.Path, need)
}

// ServeHTTP implements http.Handler: the browser rules (guard.go), then
// the credential, then the routes; every state-changing call that got
// through is journaled.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.deps.AWS != nil && isAWS(r) {
		h.serveAWS(w, r)
		return
	}
	if err := h.guard(r); err != nil {
		writeError(w, err)
		return
	}
	p, err := h.authorize(r)
	if err != nil {
		if p.name != "" {
			h.deps.Logger.Info("api call refused", "caller", p.name, "method", r.Method, "path", r.URL.Path)
		}
		h.refuse(w, r, err)
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	if h.deps.Forward != nil && !public(r) {
		// A follower: the leader runs the groups, answers and journals.
		h.forward(w, r, p)
		return
	}
	if readOnly(r.Method) || public(r) {
		h.mux.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(sw, r)
	// Metric pushes are data, not operations, and come every few seconds
	// from every agent: only refused ones are journaled, so that they do
	// not push the operators' audit trail out of the journal.
	if r.URL.Path == "/v1/metrics" && sw.status < 300 {
		return
	}
	h.audit(r, p, sw.status)
}

// refuse answers an authorization error. A caller on this host that sent
// no known credential is told where the local admin token is: whoever may
// read that file is the operator, and the CLI uses it (Client).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errUnauthorized) && h.deps.Credentials != nil && fromLoopback(r) {
		writeErrorBody(w, err, func(e *wire.Error) {
			e.TokenFile = h.deps.Credentials.TokenFile
			e.Error += "; on this host, the local admin token is in " + e.TokenFile
		})
		return
	}
	writeError(w, err)
}

// fromLoopback reports whether the connection comes from this host.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// public reports the requests that need no token: the dashboard's static
// files (they hold no data; every call they make is authorized) and the
// session endpoint that checks a token and sets the dashboard's cookie.
func public(r *http.Request) bool {
	return r.URL.Path == "/v1/session" || (readOnly(r.Method) && (r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/")))
}

// session checks a token (POST) and sets it as the dashboard's cookie:
// HttpOnly, SameSite=Strict, so scripts and other sites cannot use it;
// DELETE clears it. Instances' credentials do not sign in.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		writeJSON(w, http.StatusOK, map[string]bool{"signed_in": false})
		return
	}
	var req wire.SessionRequest
	if err := decode(w, r, MaxBody, &req); err != nil {
		writeError(w, err)
		return
	}
	p, ok := h.identify(req.Token)
	if !ok || p.instance != "" {
		h.refuse(w, r, fmt.Errorf("%w: unknown token", errUnauthorized))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: req.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	h.audit(r, p, http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"signed_in": true, "token": p.name, "role": p.role})
}

// audit journals a state-changing call: who, what, and how it ended.
func (h *Handler) audit(r *http.Request, p principal, status int) {
	if h.deps.Journal == nil || p.name == "" {
		return
	}
	ev := store.Event{
		Type:     event.KindAPIAudit,
		Instance: p.instance,
		Message:  fmt.Sprintf("%s %s %s -> %d", p.name, r.Method, r.URL.Path, status),
		Data: event.APIAudit{Token: p.name, Role: p.role, Method: r.Method,
			Path: r.URL.Path, Status: status, Remote: r.RemoteAddr},
	}
	// The call has happened: record it even when the client went away.
	if _, err := h.deps.Journal.Append(context.WithoutCancel(r.Context()), ev); err != nil {
		h.deps.Logger.Warn("audit event", "err", err, "token", p.name, "method", r.Method, "path", r.URL.Path)
	}
}

// statusWriter remembers the status code a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// InProcess returns the routes without authorization, for autoheal's own
// in-process callers (runbook executeApi steps): whoever started the
// execution was authorized and audited then.
func (h *Handler) InProcess() http.Handler { return h.mux }
