package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Browsers are the API's other callers: the dashboard, and any page the
// operator visits, which may send requests to 127.0.0.1 too. Three rules,
// applied to every request before its credential is even looked at, keep
// the second kind out whether or not tokens are configured:
//
//   - Host must name this API: an IP address, a loopback name, or a name
//     the operator configured (api.hosts, and the listen address's). A page
//     on a name its owner re-pointed at 127.0.0.1 (DNS rebinding) is
//     same-origin with itself and may read the answers; its requests carry
//     its own name and are refused, GETs included.
//   - A state-changing request must come from the API's own origin:
//     Sec-Fetch-Site same-origin or none (typed by a person, or not a
//     browser), or, from browsers that do not send it, an Origin equal to
//     the Host. This refuses cross-site forms and fetches.
//   - A state-changing request with a body must say Content-Type:
//     application/json. The bodies a page may send another site without a
//     preflight (forms, text/plain) are never JSON-typed.

// guard applies the rules; the error is the one to answer with.
func (h *Handler) guard(r *http.Request) error {
	if !h.hostAllowed(r.Host) {
		return fmt.Errorf("%w: Host %q is not a name of this API (DNS rebinding?); "+
			"add it to the config's api.hosts if clients use it", errMisdirected, r.Host)
	}
	if readOnly(r.Method) {
		return nil
	}
	if !sameOrigin(r) {
		return fmt.Errorf("%w: cross-origin %s refused (Origin %q, Sec-Fetch-Site %q): "+
			"state-changing requests must come from the API's own origin", errForbidden, r.Method,
			r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"))
	}
	return checkJSON(r)
}

// sameOrigin reports whether a request may come from the API's own
// origin: Sec-Fetch-Site, when sent, is same-origin or none, and Origin,
// when sent, is this Host (both are checked: a browser sends what is
// true, and a forged pair that disagrees is refused). Go's
// http.CrossOriginProtection skips the Origin check when Sec-Fetch-Site
// says same-origin, so it is not used.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, r.Host)
}

// checkJSON refuses a body that is not declared JSON, and a declared type
// that is not JSON even without a body (an empty form is still a form).
func checkJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 {
			return nil
		}
		return fmt.Errorf("%w: the body needs Content-Type: application/json", errMediaType)
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q: the API takes application/json", errMediaType, ct)
	}
	return nil
}

// hostAllowed reports whether a Host header names this API. An empty one
// (HTTP/1.0) is not a browser's: browsers always send it.
func (h *Handler) hostAllowed(host string) bool {
	if host == "" {
		return true
	}
	name := host
	if n, _, err := net.SplitHostPort(host); err == nil {
		name = n
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	switch {
	case net.ParseIP(name) != nil:
		// An address is its own origin: no page can rebind it.
		return true
	case name == "localhost" || strings.HasSuffix(name, ".localhost"):
		// RFC 6761: browsers resolve these to loopback themselves.
		return true
	}
	return h.hosts[name]
}

// hostSet normalises the configured names.
func hostSet(names []string) map[string]bool {
	set := map[string]bool{}
	for _, n := range names {
		if h, _, err := net.SplitHostPort(n); err == nil {
			n = h
		}
		if n = strings.TrimSuffix(strings.ToLower(strings.Trim(n, "[]")), "."); n != "" {
			set[n] = true
		}
	}
	return set
}
