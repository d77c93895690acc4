package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// TokenCookie is the cookie the browser UI carries its token in. Event
// streams (EventSource) cannot set headers, and a token in the query string
// would end up in logs and history, so the UI uses this cookie instead;
// ?token= is never accepted.
const TokenCookie = "autoheal_token"

// roleRank orders the roles: a token may do what its rank or a lower one
// needs.
var roleRank = map[string]int{config.RoleViewer: 1, config.RoleOperator: 2, config.RoleAdmin: 3}

// authToken is one configured token, known by its hash.
type authToken struct {
	name, role string
	sum        [sha256.Size]byte
	// valid is false for a hash that does not decode (a Config built in
	// code and not validated); such a token never matches.
	valid bool
}

// authenticator checks presented tokens against the configured hashes.
// With none configured it lets everything through: serve only allows that
// on loopback.
type authenticator struct {
	tokens []authToken
}

func newAuthenticator(tokens []config.Token) *authenticator {
	a := &authenticator{}
	for _, t := range tokens {
		at := authToken{name: t.Name, role: t.Role}
		if b, err := hex.DecodeString(t.SHA256); err == nil && len(b) == sha256.Size {
			copy(at.sum[:], b)
			at.valid = roleRank[t.Role] > 0
		}
		a.tokens = append(a.tokens, at)
	}
	return a
}

// open reports whether no tokens are configured.
func (a *authenticator) open() bool { return len(a.tokens) == 0 }

// lookup returns the configured token whose hash is the SHA-256 of
// presented. It compares in constant time against every configured hash,
// whichever matched, so the time it takes tells nothing about which token
// matched or how much of a hash did.
func (a *authenticator) lookup(presented string) (authToken, bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range a.tokens {
		eq := subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 || !a.tokens[found].valid {
		return authToken{}, false
	}
	return a.tokens[found], true
}

// HashToken returns the hex SHA-256 of a token: what the config's
// auth.tokens[].sha256 holds.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
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

// readOnly reports whether a method only reads.
func readOnly(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// requiredRole is the least role that may make the request: viewer to read,
// operator to change state, admin under /v1/admin/ (reserved).
func requiredRole(r *http.Request) string {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/admin/"):
		return config.RoleAdmin
	case readOnly(r.Method):
		return config.RoleViewer
	default:
		return config.RoleOperator
	}
}

// crossOrigin rejects state-changing requests that a browser sends on
// behalf of another site: the cookie would be sent with them (CSRF).
var crossOrigin = http.NewCrossOriginProtection()

// authorize checks the request's token and role. It returns the token
// (zero when the API is open) or the error to answer with.
func (h *Handler) authorize(r *http.Request) (authToken, error) {
	if h.auth.open() || public(r) {
		return authToken{}, nil
	}
	presented, cookie := presentedToken(r)
	if presented == "" {
		return authToken{}, fmt.Errorf("%w: send Authorization: Bearer TOKEN (autoheal --token, env AUTOHEAL_TOKEN)", errUnauthorized)
	}
	tok, ok := h.auth.lookup(presented)
	if !ok {
		return authToken{}, fmt.Errorf("%w: unknown token", errUnauthorized)
	}
	if cookie {
		if err := crossOrigin.Check(r); err != nil {
			return authToken{}, fmt.Errorf("%w: %v", errForbidden, err)
		}
	}
	if need := requiredRole(r); roleRank[tok.role] < roleRank[need] {
		return authToken{}, fmt.Errorf("%w: token %s has role %s; %s %s needs %s", errForbidden, tok.name, tok.role, r.Method, r.URL.Path, need)
	}
	return tok, nil
}

// serveAuthorized runs the request through authorization, then the routes,
// and journals every state-changing call that got through.
func (h *Handler) serveAuthorized(w http.ResponseWriter, r *http.Request) {
	tok, err := h.authorize(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if readOnly(r.Method) || h.auth.open() || public(r) {
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
	h.audit(r, tok, sw.status)
}

// public reports the requests that need no token: the dashboard's static
// files (they hold no data; every call they make is authorized) and the
// session endpoint that checks a token and sets the dashboard's cookie.
func public(r *http.Request) bool {
	return r.URL.Path == "/v1/session" || (readOnly(r.Method) && (r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/")))
}

// SessionRequest is the body of POST /v1/session.
type SessionRequest struct {
	Token string `json:"token"`
}

// session checks a token (POST) and sets it as the dashboard's cookie:
// HttpOnly, SameSite=Strict, so scripts and other sites cannot use it;
// DELETE clears it.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		writeJSON(w, http.StatusOK, map[string]bool{"signed_in": false})
		return
	}
	if h.auth.open() {
		writeJSON(w, http.StatusOK, map[string]any{"signed_in": true, "open": true})
		return
	}
	var req SessionRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	tok, ok := h.auth.lookup(req.Token)
	if !ok {
		writeError(w, fmt.Errorf("%w: unknown token", errUnauthorized))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: req.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	h.audit(r, tok, http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"signed_in": true, "token": tok.name, "role": tok.role})
}

// audit journals a state-changing call: who, what, and how it ended.
func (h *Handler) audit(r *http.Request, tok authToken, status int) {
	if h.deps.Store == nil {
		return
	}
	ev := store.Event{
		Type:    event.KindAPIAudit,
		Message: fmt.Sprintf("%s %s %s -> %d", tok.name, r.Method, r.URL.Path, status),
		Data: event.APIAudit{Token: tok.name, Role: tok.role, Method: r.Method,
			Path: r.URL.Path, Status: status, Remote: r.RemoteAddr},
	}
	// The call has happened: record it even when the client went away.
	if _, err := h.deps.Store.Append(context.WithoutCancel(r.Context()), ev); err != nil {
		h.deps.Logger.Warn("audit event", "err", err, "token", tok.name, "method", r.Method, "path", r.URL.Path)
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
