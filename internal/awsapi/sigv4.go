package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// AWS Signature Version 4, as the AWS CLI and SDKs sign every request
// (docs/design.md §14): the server recomputes the signature from the
// request and the secret of the access key it names, and compares. The
// parse and the computation are pure so that table tests cover them.

const (
	algorithm = "AWS4-HMAC-SHA256"
	// amzDate is X-Amz-Date's layout.
	amzDate = "20060102T150405Z"
	// MaxSkew is how far a request's X-Amz-Date may be from the server's
	// clock either way, as on AWS (RequestExpired beyond it).
	MaxSkew = 5 * time.Minute
)

// authHeader is a parsed Authorization header.
type authHeader struct {
	KeyID, Date, Region, Service string
	SignedHeaders                []string
	Signature                    string
}

// scope is the credential scope: DATE/REGION/SERVICE/aws4_request.
func (a authHeader) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
}

// authError is a refused signature: AWS's error code and why.
type authError struct{ Code, Msg string }

func (e *authError) Error() string { return e.Code + ": " + e.Msg }

func refuse(code, format string, args ...any) *authError {
	return &authError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// parseAuthorization parses "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/
// SERVICE/aws4_request, SignedHeaders=a;b, Signature=HEX".
func parseAuthorization(h string) (authHeader, *authError) {
	var a authHeader
	if h == "" {
		return a, refuse("MissingAuthenticationToken", "the request is not signed: send it with AWS Signature Version 4 (an AWS CLI or SDK with an access key of autoheal's)")
	}
	alg, rest, _ := strings.Cut(h, " ")
	if alg != algorithm {
		return a, refuse("IncompleteSignature", "Authorization: algorithm %q is not %s", alg, algorithm)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || seen[k] {
			return a, refuse("IncompleteSignature", "Authorization: %q is not KEY=VALUE once", strings.TrimSpace(part))
		}
		seen[k] = true
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" || f[0] == "" {
				return a, refuse("IncompleteSignature", "Authorization: Credential %q is not KEY/DATE/REGION/SERVICE/aws4_request", v)
			}
			a.KeyID, a.Date, a.Region, a.Service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		default:
			return a, refuse("IncompleteSignature", "Authorization: unknown field %q", k)
		}
	}
	if a.KeyID == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return a, refuse("IncompleteSignature", "Authorization needs Credential, SignedHeaders and Signature")
	}
	if !sort.StringsAreSorted(a.SignedHeaders) || !contains(a.SignedHeaders, "host") {
		return a, refuse("IncompleteSignature", "Authorization: SignedHeaders %q must be sorted and include host", strings.Join(a.SignedHeaders, ";"))
	}
	return a, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkTime refuses a request whose X-Amz-Date is not in the credential
// scope's day or is more than MaxSkew from now.
func checkTime(a authHeader, stamp string, now time.Time) *authError {
	t, err := time.Parse(amzDate, stamp)
	if err != nil {
		return refuse("IncompleteSignature", "X-Amz-Date %q is not YYYYMMDDTHHMMSSZ", stamp)
	}
	if stamp[:8] != a.Date {
		return refuse("SignatureDoesNotMatch", "the credential scope's date %s is not X-Amz-Date's day %s", a.Date, stamp[:8])
	}
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return refuse("RequestExpired", "request signed at %s, %s from the server's time %s (at most %s)",
			t.Format(time.RFC3339), d.Round(time.Second), now.UTC().Format(time.RFC3339), MaxSkew)
	}
	return nil
}

// canonicalRequest is SigV4's canonical form of a request.
func canonicalRequest(method string, u *url.URL, header http.Header, host string, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(method + "\n")
	b.WriteString(canonicalPath(u) + "\n")
	b.WriteString(canonicalQuery(u.Query()) + "\n")
	for _, name := range signed {
		var v string
		if name == "host" {
			v = host
		} else {
			v = strings.Join(header.Values(name), ",")
		}
		b.WriteString(name + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + payloadHash)
	return b.String()
}

// canonicalPath URI-encodes each segment of the path, as non-S3 services
// do (the SDKs send it encoded once; it is encoded again here).
func canonicalPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = uriEncode(s)
	}
	return strings.Join(segs, "/")
}

// canonicalQuery sorts the parameters by name, then value, encoded.
func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode is SigV4's encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX.
func uriEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// signature computes the hex signature of a canonical request.
func signature(secret string, a authHeader, stamp, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	toSign := algorithm + "\n" + stamp + "\n" + a.scope() + "\n" + hex.EncodeToString(sum[:])
	k := hmacSHA256([]byte("AWS4"+secret), a.Date)
	k = hmacSHA256(k, a.Region)
	k = hmacSHA256(k, a.Service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, toSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// verify checks a request's signature against secret. body is the
// request's body, already read.
func verify(r *http.Request, a authHeader, secret string, body []byte, now time.Time) *authError {
	stamp := r.Header.Get("X-Amz-Date")
	if stamp == "" {
		return refuse("IncompleteSignature", "the request has no X-Amz-Date header")
	}
	if !contains(a.SignedHeaders, "x-amz-date") {
		return refuse("IncompleteSignature", "SignedHeaders must include x-amz-date")
	}
	if err := checkTime(a, stamp, now); err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return refuse("SignatureDoesNotMatch", "X-Amz-Content-Sha256 is not the body's SHA-256")
	}
	want := signature(secret, a, stamp, canonicalRequest(r.Method, r.URL, r.Header, r.Host, a.SignedHeaders, payload))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return refuse("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided: check the access key's secret (access key %s)", a.KeyID)
	}
	return nil
}
