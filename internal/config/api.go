package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The API: the tokens it accepts (auth) and the host names it answers to
// (api). Neither has defaults.

// Auth configures who may call the API. Tokens are never written in clear:
// the file holds the SHA-256 of each (see `autoheal token new`).
type Auth struct {
	// Tokens are the accepted bearer tokens. Default none (the API is open,
	// loopback only).
	Tokens []Token `yaml:"tokens"`
}

// API configures the HTTP API beyond its credentials.
type API struct {
	// Hosts are the names clients reach the API by, as sent in Host
	// ("autoheal.example.com"; a port is ignored). Requests whose Host is
	// none of these, an IP address, localhost or the listen address's name
	// are refused (421), so that a web page on a name pointed at this host
	// (DNS rebinding) reads nothing. Default none.
	Hosts []string `yaml:"hosts"`
	// AWSCredentialsFile names the access keys of the AWS-compatible
	// endpoint (/aws on the API's listener): a file in the AWS CLI's
	// credentials format, each profile with its autoheal_role, readable
	// by the controller's user only (mode 0600). Relative to the config
	// file. Without it the endpoint takes only instances' credentials.
	AWSCredentialsFile string `yaml:"aws_credentials_file"`
}

// InstanceRoles are the roles a group may grant its instances
// (groups[].api_role).
var InstanceRoles = []string{RoleViewer, RoleOperator}

// Token roles, from least to most privileged; each may do what the ones
// before it may.
const (
	// RoleViewer may read: GET and HEAD on every endpoint.
	RoleViewer = "viewer"
	// RoleOperator may also change state: POST, PUT and DELETE (scale,
	// terminate, run documents, push metrics, the Alertmanager webhook).
	RoleOperator = "operator"
	// RoleAdmin may do everything, including future admin endpoints.
	RoleAdmin = "admin"
)

// Roles are the valid token roles, from least to most privileged.
var Roles = []string{RoleViewer, RoleOperator, RoleAdmin}

// Token is one accepted API token, known by the SHA-256 of its text.
type Token struct {
	// Name identifies the token in audit events: [a-z0-9][a-z0-9_-]*, at
	// most 63 characters, unique. Required.
	Name string `yaml:"name"`
	// Role is viewer, operator or admin. Required.
	Role string `yaml:"role"`
	// SHA256 is the hex SHA-256 of the token (64 hex digits), as printed
	// by `autoheal token new` and `autoheal token hash`. Required.
	SHA256 string `yaml:"sha256"`
}

var sha256Hex = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

// auth checks the API tokens: unique names, known roles, and hashes that
// are hashes (a token pasted in clear is the mistake to catch).
func (v *validator) auth() {
	p := path{}.field("auth").field("tokens")
	names := map[string]path{}
	for ti := range v.c.Auth.Tokens {
		t := &v.c.Auth.Tokens[ti]
		tp := p.index(ti)
		np := tp.field("name")
		switch {
		case t.Name == "":
			v.errorf(np, "token name is required: it names the token in audit events")
		case !itemName.MatchString(t.Name):
			v.errorf(np, "token name %q: use lowercase letters, digits, '_' and '-', starting with a letter or digit, at most 63 characters", t.Name)
		}
		if first, dup := names[t.Name]; dup && t.Name != "" {
			v.errorf(np, "duplicate token name %q (first at %s)", t.Name, v.where(first))
		} else {
			names[t.Name] = np
		}
		rp := tp.field("role")
		switch {
		case t.Role == "":
			v.errorf(rp, "token role is required: one of %s", strings.Join(Roles, ", "))
		case !slices.Contains(Roles, t.Role):
			v.errorf(rp, "token role %q: use one of %s%s", t.Role, strings.Join(Roles, ", "), didYouMean(t.Role, Roles...))
		}
		hp := tp.field("sha256")
		switch {
		case t.SHA256 == "":
			v.errorf(hp, "token sha256 is required: the SHA-256 of the token (autoheal token new, autoheal token hash)")
		case strings.HasPrefix(t.SHA256, "ah_"):
			v.errorf(hp, "this is a token in clear, not its hash: never write a token in the config; put the output of `autoheal token hash` here and revoke this token")
		case !sha256Hex.MatchString(t.SHA256):
			what := fmt.Sprintf("%d characters", len(t.SHA256))
			if len(t.SHA256) == 64 {
				what = "characters that are not hex digits"
			}
			v.errorf(hp, "token sha256: want 64 hex digits (the SHA-256 of the token), got %s", what)
		}
	}
}

// apiHost is a DNS name as clients write it in a URL, with an optional
// port.
var apiHost = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?(:[0-9]{1,5})?$`)

// api checks the names the API answers to.
func (v *validator) api() {
	p := path{}.field("api").field("hosts")
	for i, h := range v.c.API.Hosts {
		if !apiHost.MatchString(h) || len(h) > 253 {
			v.errorf(p.index(i), "api host %q: give a name as clients write it in the API's URL, like autoheal.example.com (no scheme, no path)", h)
		}
	}
}
