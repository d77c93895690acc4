package awsapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/store"
)

// --- Parameter Store ---

// parameterKey is where a parameter is kept.
func parameterKey(name string) string { return "ssm/parameter/" + name }

// groupParameterPrefix names the groups' configured parameters.
const groupParameterPrefix = "/autoheal/"

// secretValue stands for a value the API never shows, as the metadata
// endpoint writes it.
const secretValue = "(secret)"

// Parameter types.
const (
	typeString       = "String"
	typeStringList   = "StringList"
	typeSecureString = "SecureString"
)

// storedParameter is a parameter as kept in the kv table.
type storedParameter struct {
	Value          string    `json:"value"`
	Type           string    `json:"type"`
	Version        int64     `json:"version"`
	LastModified   time.Time `json:"last_modified"`
	Description    string    `json:"description,omitempty"`
	AllowedPattern string    `json:"allowed_pattern,omitempty"`
	Tier           string    `json:"tier,omitempty"`
	KeyID          string    `json:"key_id,omitempty"`
	LastModifiedBy string    `json:"last_modified_by,omitempty"`
}

type parameterOut struct {
	Name             string
	Type             string
	Value            string
	Version          int64
	Selector         string   `json:",omitempty"`
	LastModifiedDate *awsTime `json:",omitempty"`
	ARN              string
	DataType         string
}

// parameterARN is a parameter's ARN.
func parameterARN(name string) string {
	return "arn:aws:ssm:" + awsid.Region + ":" + awsid.Account + ":parameter/" + strings.TrimPrefix(name, "/")
}

var parameterNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.\-/]+$`)

// parameterName reads a parameter's name (or ARN) and its :VERSION
// selector, if any (labels are not kept here).
func parameterName(in string) (name, selector string, version int64, err error) {
	name = in
	if rest, ok := strings.CutPrefix(in, "arn:"); ok {
		f := strings.SplitN(rest, ":", 5)
		if len(f) < 5 || f[1] != "ssm" || !strings.HasPrefix(f[4], "parameter/") {
			return "", "", 0, invalid("ValidationException", "%q is not a parameter's ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)", in)
		}
		name = strings.TrimPrefix(f[4], "parameter")
		if !strings.Contains(strings.TrimPrefix(name, "/"), "/") {
			name = strings.TrimPrefix(name, "/")
		}
	}
	if base, sel, ok := strings.Cut(name, ":"); ok {
		n, perr := strconv.ParseInt(sel, 10, 64)
		if perr != nil || n < 1 {
			return "", "", 0, invalid("ParameterVersionLabelNotFound", "parameter %s: %q is not a version (labels are not kept here)", base, sel)
		}
		name, selector, version = base, ":"+sel, n
	}
	switch {
	case name == "":
		return "", "", 0, invalid("ValidationException", "Name is required")
	case len(name) > 2048:
		return "", "", 0, invalid("ValidationException", "parameter name is %d characters: at most 2048", len(name))
	case !parameterNameRE.MatchString(name):
		return "", "", 0, invalid("ValidationException", "parameter name %q: only a-zA-Z0-9_.- and / are allowed", name)
	}
	return name, selector, version, nil
}

// groupParameter is a group's configured parameter named
// /autoheal/GROUP/NAME.
func (h *Handler) groupParameter(name string) (config.Parameter, string, bool) {
	rest, ok := strings.CutPrefix(name, groupParameterPrefix)
	if !ok {
		return config.Parameter{}, "", false
	}
	group, pname, ok := strings.Cut(rest, "/")
	g, found := h.groups[group]
	if !ok || !found {
		return config.Parameter{}, "", false
	}
	for _, p := range g.Config().Parameters {
		if p.Name == pname {
			return p, group, true
		}
	}
	return config.Parameter{}, "", false
}

// readParameter returns a parameter, nil when there is none; refused
// is an error of the whole call.
func (h *Handler) readParameter(c *call, in string, decrypt bool) (*parameterOut, error) {
	name, selector, version, err := parameterName(in)
	if err != nil {
		return nil, err
	}
	var out *parameterOut
	if p, group, ok := h.groupParameter(name); ok {
		out = &parameterOut{Name: name, Type: typeString, Value: p.Value, Version: 1, DataType: "text"}
		if p.Secret {
			if decrypt {
				return nil, &apiError{Status: 400, Code: "AccessDeniedException", Msg: fmt.Sprintf(
					"%s is the secret parameter %s of group %s (config groups[].parameters): autoheal never shows its value through the API; the group's instances have it as $%s",
					name, p.Name, group, p.Name)}
			}
			out.Type, out.Value = typeSecureString, secretValue
		}
	} else {
		kv, err := h.kv()
		if err != nil {
			return nil, err
		}
		s, err := kv.Get(c.ctx, parameterKey(name))
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var sp storedParameter
		if err := json.Unmarshal([]byte(s), &sp); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		out = &parameterOut{Name: name, Type: sp.Type, Value: sp.Value, Version: sp.Version, LastModifiedDate: timeOf(&sp.LastModified), DataType: "text"}
		if sp.Type == typeSecureString {
			switch {
			case !decrypt:
				out.Value = secretValue
			case !c.caller.Allows(config.RoleOperator):
				return nil, &apiError{Status: 400, Code: "AccessDeniedException", Msg: fmt.Sprintf(
					"%s is not authorized to read the value of SecureString %s (WithDecryption): it needs role operator and has %s", c.caller.Name, name, c.caller.Role)}
			}
		}
	}
	if version != 0 && version != out.Version {
		return nil, invalid("ParameterVersionNotFound", "parameter %s is at version %d; only the latest version is kept here, not %d", name, out.Version, version)
	}
	out.Selector, out.ARN = selector, parameterARN(name)
	return out, nil
}

type getParameterRequest struct {
	Name           string
	Names          []string
	WithDecryption bool
}

func (h *Handler) getParameter(c *call) (any, error) {
	var req getParameterRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	p, err := h.readParameter(c, req.Name, req.WithDecryption)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, invalid("ParameterNotFound", "parameter %s not found", req.Name)
	}
	return map[string]any{"Parameter": p}, nil
}

func (h *Handler) getParameters(c *call) (any, error) {
	var req getParameterRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	if len(req.Names) == 0 || len(req.Names) > 10 {
		return nil, invalid("ValidationException", "Names takes 1 to 10 names, got %d", len(req.Names))
	}
	params, missing := []*parameterOut{}, []string{}
	for _, n := range req.Names {
		p, err := h.readParameter(c, n, req.WithDecryption)
		var ae *apiError
		if err != nil && (!errors.As(err, &ae) || ae.Status >= 500 || ae.Code == "AccessDeniedException") {
			return nil, err
		}
		if err != nil || p == nil {
			// Not there, or a bad name or version: an invalid
			// parameter, as SSM's.
			if !slices.Contains(missing, n) {
				missing = append(missing, n)
			}
			continue
		}
		params = append(params, p)
	}
	return map[string]any{"Parameters": params, "InvalidParameters": missing}, nil
}

type putParameterRequest struct {
	Name           string
	Description    string
	Value          *string
	Type           string
	KeyId          string
	Overwrite      bool
	AllowedPattern string
	Tags           json.RawMessage
	Tier           string
	Policies       string
	DataType       string
}

// paramMu makes a parameter's read and its next version one step.
var paramMu sync.Mutex

func (h *Handler) putParameter(c *call) (any, error) {
	var req putParameterRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	name, sel, _, err := parameterName(req.Name)
	if err != nil {
		return nil, err
	}
	if err := checkPutParameter(req, name, sel); err != nil {
		return nil, err
	}
	kv, err := h.kv()
	if err != nil {
		return nil, err
	}
	paramMu.Lock()
	defer paramMu.Unlock()
	var cur storedParameter
	s, err := kv.Get(c.ctx, parameterKey(name))
	switch {
	case err == nil:
		if !req.Overwrite {
			return nil, invalid("ParameterAlreadyExists", "the parameter %s already exists (version %s): to overwrite its value, set Overwrite (--overwrite)", name, versionOf(s))
		}
		if err := json.Unmarshal([]byte(s), &cur); err != nil {
			return nil, fmt.Errorf("parameter %s: %w", name, err)
		}
		if req.Tags != nil && string(req.Tags) != "null" {
			return nil, invalid("ValidationException", "Tags can be given only when the parameter is created, not with Overwrite")
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	next := storedParameter{
		Value: *req.Value, Type: req.Type, Version: cur.Version + 1, LastModified: h.now().UTC(),
		Description: req.Description, AllowedPattern: req.AllowedPattern, Tier: req.Tier, KeyID: req.KeyId,
		LastModifiedBy: c.caller.Name,
	}
	if next.Type == "" {
		next.Type = cur.Type
	}
	if next.Type == "" {
		next.Type = typeString
	}
	if next.Tier == "" {
		next.Tier = "Standard"
	}
	if next.KeyID != "" && next.Type != typeSecureString {
		return nil, invalid("ValidationException", "KeyId is for a SecureString parameter, not a %s", next.Type)
	}
	if err := putJSON(c.ctx, kv, parameterKey(name), next); err != nil {
		return nil, err
	}
	return map[string]any{"Version": next.Version, "Tier": next.Tier}, nil
}

// checkPutParameter checks a PutParameter request before anything is
// read: its name (name and sel as parameterName reads req.Name), type,
// tier and value.
func checkPutParameter(req putParameterRequest, name, sel string) error {
	first := strings.ToLower(strings.SplitN(strings.TrimPrefix(name, "/"), "/", 2)[0])
	limit := 4096
	switch {
	case sel != "" || strings.HasPrefix(req.Name, "arn:"):
		return invalid("ValidationException", "PutParameter takes a parameter's name, not %q", req.Name)
	case strings.HasPrefix(name, groupParameterPrefix):
		return invalid("ValidationException", "%s is under %s, the groups' configured parameters (config groups[].parameters): read-only here; change the config", name, groupParameterPrefix)
	case strings.HasPrefix(first, "aws") || strings.HasPrefix(first, "ssm"):
		return invalid("ValidationException", "parameter name %s: a name cannot begin with aws or ssm (any case)", name)
	case strings.Count(strings.TrimPrefix(name, "/"), "/") >= 15:
		return invalid("HierarchyLevelLimitExceededException", "parameter %s: at most 15 levels of hierarchy", name)
	case req.Value == nil || *req.Value == "":
		return invalid("ValidationException", "Value is required and cannot be empty")
	case req.Type != "" && req.Type != typeString && req.Type != typeStringList && req.Type != typeSecureString:
		return invalid("ValidationException", "Type %q: String, StringList or SecureString", req.Type)
	case req.DataType != "" && req.DataType != "text":
		return invalid("UnsupportedParameterType", "DataType %s is not supported here: text", req.DataType)
	case req.Policies != "":
		return invalid("InvalidPolicyTypeException", "parameter policies (expiration, notification) are not supported here")
	case req.Tier == "Advanced":
		limit = 8192
	case req.Tier != "" && req.Tier != "Standard" && req.Tier != "Intelligent-Tiering":
		return invalid("ValidationException", "Tier %q: Standard, Advanced or Intelligent-Tiering", req.Tier)
	}
	if len(*req.Value) > limit {
		return invalid("ValidationException", "parameter %s: the value is %d bytes, at most %d in its tier", name, len(*req.Value), limit)
	}
	if req.AllowedPattern != "" {
		re, err := regexp.Compile(req.AllowedPattern)
		if err != nil {
			return invalid("InvalidAllowedPatternException", "AllowedPattern %q: %v", req.AllowedPattern, err)
		}
		if !re.MatchString(*req.Value) {
			return invalid("ParameterPatternMismatchException", "parameter %s: the value does not match AllowedPattern %s", name, req.AllowedPattern)
		}
	}
	return nil
}

// versionOf is the version of a stored parameter, for a message.
func versionOf(s string) string {
	var sp storedParameter
	json.Unmarshal([]byte(s), &sp)
	return strconv.FormatInt(sp.Version, 10)
}

func (h *Handler) deleteParameter(c *call) (any, error) {
	var req getParameterRequest
	if err := decodeJSON(c, &req); err != nil {
		return nil, err
	}
	name, sel, _, err := parameterName(req.Name)
	if err != nil {
		return nil, err
	}
	if sel != "" {
		return nil, invalid("ValidationException", "DeleteParameter takes a parameter's name, not %q", req.Name)
	}
	if strings.HasPrefix(name, groupParameterPrefix) {
		return nil, invalid("ValidationException", "%s is under %s, the groups' configured parameters: read-only here; change the config", name, groupParameterPrefix)
	}
	kv, err := h.kv()
	if err != nil {
		return nil, err
	}
	paramMu.Lock()
	defer paramMu.Unlock()
	if _, err := kv.Get(c.ctx, parameterKey(name)); errors.Is(err, store.ErrNotFound) {
		return nil, invalid("ParameterNotFound", "parameter %s not found", name)
	} else if err != nil {
		return nil, err
	}
	if err := kv.Delete(c.ctx, parameterKey(name)); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}
