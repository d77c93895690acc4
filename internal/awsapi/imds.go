package awsapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
)

// The instance metadata service (docs/design.md §14): EC2's paths, per
// instance, under /imds/KEY/ where KEY is the instance's path key
// (api.Credentials.IMDSKey), handed to the instance only, in
// AWS_EC2_METADATA_SERVICE_ENDPOINT, which the AWS CLI and SDKs honour.
// EC2 tells instances apart by the network interface a request comes
// from; on one host every instance shares loopback, so the key in the
// path does it. IMDSv2 tokens are issued and checked; a request without
// one is answered (IMDSv1, EC2's default "optional"), one with a bad or
// expired token is refused (401). Credentials are served only to an
// instance whose group has an api_role: by default an instance gets no
// power, like an EC2 instance without an instance profile.

const (
	tokenHeader    = "X-Aws-Ec2-Metadata-Token"
	tokenTTLHeader = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	// maxTokenTTL is IMDSv2's: six hours.
	maxTokenTTL = 21600
)

// imdsCaller identifies the instance from the path key.
func (h *Handler) imdsCaller(w http.ResponseWriter, r *http.Request) (api.Caller, bool) {
	key, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, api.IMDSPrefix), "/")
	var id string
	ok := h.deps.Credentials != nil
	if ok {
		id, ok = h.deps.Credentials.InstanceOfIMDSKey(key)
	}
	if !ok {
		http.Error(w, "Not Found: unknown instance metadata key", http.StatusNotFound)
		return api.Caller{}, false
	}
	g, live := h.groupOf(id)
	if !live {
		http.Error(w, "Not Found: instance "+id+" is gone", http.StatusNotFound)
		return api.Caller{}, false
	}
	return api.Caller{Name: "instance:" + id, Role: g.Config().APIRole, Instance: id}, true
}

// imdsToken is an IMDSv2 token: its expiry and a MAC over it and the
// instance, under a key derived from the instance's credentials, so no
// token is stored and one instance's token is no other's.
func (h *Handler) imdsToken(id string, expires time.Time) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(expires.Unix()))
	return base64.RawURLEncoding.EncodeToString(append(b, h.tokenMAC(id, b)...))
}

func (h *Handler) tokenMAC(id string, expiry []byte) []byte {
	_, secret, _ := h.deps.Credentials.InstanceAWSKey(id)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("imds token v1\x00"))
	m.Write(expiry)
	return m.Sum(nil)[:16]
}

// tokenValid checks an IMDSv2 token for an instance.
func (h *Handler) tokenValid(id, token string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) != 24 {
		return false
	}
	if !hmac.Equal(b[8:], h.tokenMAC(id, b[:8])) {
		return false
	}
	return h.now().Unix() < int64(binary.BigEndian.Uint64(b[:8]))
}

// serveIMDS answers one metadata path.
func (h *Handler) serveIMDS(w http.ResponseWriter, r *http.Request, c api.Caller) {
	_, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, api.IMDSPrefix), "/")
	// "$AWS_EC2_METADATA_SERVICE_ENDPOINT/latest/..." doubles the slash.
	path = "/" + strings.TrimLeft(path, "/")
	if path == "/latest/api/token" {
		if r.Method != http.MethodPut {
			w.Header().Set("Allow", "PUT")
			http.Error(w, "Method Not Allowed: PUT a token request", http.StatusMethodNotAllowed)
			return
		}
		ttl, err := strconv.Atoi(r.Header.Get(tokenTTLHeader))
		if err != nil || ttl < 1 || ttl > maxTokenTTL {
			http.Error(w, fmt.Sprintf("Bad Request: %s must be 1 to %d seconds", tokenTTLHeader, maxTokenTTL), http.StatusBadRequest)
			return
		}
		w.Header().Set(tokenTTLHeader, strconv.Itoa(ttl))
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, h.imdsToken(c.Instance, h.now().Add(time.Duration(ttl)*time.Second)))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if t := r.Header.Get(tokenHeader); t != "" && !h.tokenValid(c.Instance, t) {
		http.Error(w, "Unauthorized: the IMDSv2 token is not valid (expired, or another instance's)", http.StatusUnauthorized)
		return
	}
	body, ctype, ok := h.metadata(c, path)
	if !ok {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", ctype)
	fmt.Fprint(w, body)
}

// metadata returns a metadata path's text, as EC2's service does:
// directories list their entries one per line, subdirectories with "/".
func (h *Handler) metadata(c api.Caller, path string) (string, string, bool) {
	g, ok := h.groupOf(c.Instance)
	if !ok {
		return "", "", false
	}
	in, _ := g.Instance(c.Instance)
	cfg := g.Config()
	ip := instanceIP(g, in.ID)
	role := ""
	if cfg.APIRole != "" {
		role = "autoheal-" + cfg.APIRole
	}
	text := map[string]string{
		"/latest/meta-data/instance-id":                             in.ID,
		"/latest/meta-data/ami-id":                                  ec2InstanceOf(instanceRef{g, in}).ImageID,
		"/latest/meta-data/instance-type":                           "autoheal.process",
		"/latest/meta-data/local-ipv4":                              ip,
		"/latest/meta-data/local-hostname":                          "localhost",
		"/latest/meta-data/hostname":                                "localhost",
		"/latest/meta-data/placement/availability-zone":             awsid.Zone,
		"/latest/meta-data/placement/availability-zone-id":          awsid.Zone + "-az1",
		"/latest/meta-data/placement/region":                        awsid.Region,
		"/latest/meta-data/autoscaling/target-lifecycle-state":      lifecycleTarget(in.State),
		"/latest/meta-data/tags/instance/aws:autoscaling:groupName": cfg.Name,
	}
	dirs := map[string][]string{
		"/latest":                           {"api/", "dynamic/", "meta-data/", "user-data"},
		"/latest/meta-data":                 {"ami-id", "autoscaling/", "hostname", "instance-id", "instance-type", "local-hostname", "local-ipv4", "placement/", "tags/"},
		"/latest/meta-data/placement":       {"availability-zone", "availability-zone-id", "region"},
		"/latest/meta-data/autoscaling":     {"target-lifecycle-state"},
		"/latest/meta-data/tags":            {"instance/"},
		"/latest/meta-data/tags/instance":   {"aws:autoscaling:groupName"},
		"/latest/dynamic":                   {"instance-identity/"},
		"/latest/dynamic/instance-identity": {"document"},
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Tags)) {
		text["/latest/meta-data/tags/instance/"+k] = cfg.Tags[k]
		dirs["/latest/meta-data/tags/instance"] = append(dirs["/latest/meta-data/tags/instance"], k)
	}
	if cfg.Launch.UserData != "" {
		text["/latest/user-data"] = cfg.Launch.UserData
	}
	if role != "" {
		dirs["/latest/meta-data"] = append(dirs["/latest/meta-data"], "iam/")
		dirs["/latest/meta-data/iam"] = []string{"info", "security-credentials/"}
		dirs["/latest/meta-data/iam/security-credentials"] = []string{role}
		text["/latest/meta-data/iam/info"] = jsonText(map[string]string{"Code": "Success", "LastUpdated": in.LaunchedAt.UTC().Format(time.RFC3339),
			"InstanceProfileArn": "arn:aws:iam::" + awsid.Account + ":instance-profile/" + role, "InstanceProfileId": strings.ToUpper("AIPA" + strings.TrimPrefix(in.ID, "i-"))})
		keyID, secret, session := h.deps.Credentials.InstanceAWSKey(in.ID)
		text["/latest/meta-data/iam/security-credentials/"+role] = jsonText(map[string]string{"Code": "Success", "LastUpdated": h.now().UTC().Format(time.RFC3339),
			"Type": "AWS-HMAC", "AccessKeyId": keyID, "SecretAccessKey": secret, "Token": session,
			"Expiration": h.now().Add(6 * time.Hour).UTC().Format(time.RFC3339)})
	}
	text["/latest/dynamic/instance-identity/document"] = jsonText(map[string]any{"accountId": awsid.Account, "architecture": "x86_64",
		"availabilityZone": awsid.Zone, "imageId": text["/latest/meta-data/ami-id"], "instanceId": in.ID, "instanceType": "autoheal.process",
		"pendingTime": in.LaunchedAt.UTC().Format(time.RFC3339), "privateIp": ip, "region": awsid.Region, "version": "2017-09-30"})
	clean := strings.TrimSuffix(path, "/")
	if d, ok := dirs[clean]; ok {
		return strings.Join(d, "\n"), "text/plain", true
	}
	if t, ok := text[clean]; ok {
		ctype := "text/plain"
		if strings.HasPrefix(t, "{") {
			ctype = "application/json"
		}
		return t, ctype, true
	}
	return "", "", false
}

// lifecycleTarget is the Auto Scaling lifecycle state an instance is
// heading to, as .../autoscaling/target-lifecycle-state says.
func lifecycleTarget(state string) string {
	if strings.HasPrefix(state, "Terminating") || state == "Terminated" {
		return "Terminated"
	}
	return "InService"
}

func jsonText(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
