package awsapi

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/autoheal/autoheal/internal/api"
	"github.com/autoheal/autoheal/internal/awsid"
	"github.com/autoheal/autoheal/internal/config"
	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/group"
	"github.com/autoheal/autoheal/internal/store"
)

// Handler is the AWS-compatible endpoint (docs/design.md §14): AWS's wire
// protocols on the API's listener, answered from autoheal's objects with
// AWS's names and shapes. It implements api.AWSEndpoint.
type Handler struct {
	deps    api.Deps
	actions ScheduledActions
	groups  map[string]api.Group
	keys    map[string]Key
	now     func() time.Time
	log     *slog.Logger
}

var _ api.AWSEndpoint = (*Handler)(nil)

// MaxBody bounds a request's body: AWS's largest here, PutMetricData's,
// is 1 MB.
const MaxBody = 1 << 20

// ScheduledActions are the scheduler's run-time scheduled actions
// (*maintenance.Scheduler), for PutScheduledUpdateGroupAction.
type ScheduledActions interface {
	PutAction(a config.ScheduledAction) error
}

// New builds the endpoint over the API's components; keys are the access
// keys of LoadKeys. Instances' keys come from deps.Credentials. actions
// may be nil (PutScheduledUpdateGroupAction is then unavailable).
func New(deps api.Deps, keys []Key, actions ScheduledActions) *Handler {
	h := &Handler{deps: deps, actions: actions, groups: map[string]api.Group{}, keys: map[string]Key{}, now: time.Now, log: deps.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	for _, g := range deps.Groups {
		h.groups[g.Name()] = g
	}
	for _, k := range keys {
		h.keys[k.ID] = k
	}
	return h
}

// apiError is an error answered in the service's own format.
type apiError struct {
	Status    int
	Code, Msg string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Msg }

// invalid is a client error: AWS's code and the message.
func invalid(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// protocol is a service's wire protocol.
type protocol int

const (
	// query is the Query protocol with AWS's XML responses (Auto
	// Scaling, ELBv2, CloudWatch).
	query protocol = iota
	// ec2 is EC2's variant of it: lists as item, no Result element.
	ec2Query
	// json11 is the JSON 1.1 protocol (SSM): X-Amz-Target names the action.
	json11
)

// service is one AWS service of the endpoint.
type service struct {
	// name is the signing name, in the credential scope.
	name string
	// version is the Query protocol's Version parameter; target the
	// JSON protocol's X-Amz-Target prefix.
	version, target string
	protocol        protocol
	xmlns           string
	actions         map[string]action
}

// action is one API action.
type action struct {
	// need is the least role that may call it.
	need string
	// self: an instance's credentials may call it for that instance
	// whatever its group's role (PutMetricData, as POST /v1/metrics).
	self bool
	run  func(h *Handler, c *call) (any, error)
}

// call is one request to an action.
type call struct {
	ctx    context.Context
	caller api.Caller
	action string
	// params are the Query protocol's parameters; body the JSON
	// protocol's request.
	params url.Values
	body   []byte
}

// services are the endpoint's services, by signing name.
func services() map[string]*service {
	return map[string]*service{
		"ec2":                  {name: "ec2", version: "2016-11-15", protocol: ec2Query, xmlns: "http://ec2.amazonaws.com/doc/2016-11-15/", actions: ec2Actions},
		"autoscaling":          {name: "autoscaling", version: "2011-01-01", protocol: query, xmlns: "http://autoscaling.amazonaws.com/doc/2011-01-01/", actions: autoscalingActions},
		"elasticloadbalancing": {name: "elasticloadbalancing", version: "2015-12-01", protocol: query, xmlns: "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/", actions: elbv2Actions},
		"monitoring":           {name: "monitoring", version: "2010-08-01", protocol: query, xmlns: "http://monitoring.amazonaws.com/doc/2010-08-01/", actions: cloudwatchActions},
		"ssm":                  {name: "ssm", target: "AmazonSSM", protocol: json11, actions: ssmActions},
	}
}

var serviceTable = services()

// readBody reads a request's body, at most MaxBody, and puts it back.
func readBody(r *http.Request) ([]byte, *apiError) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	r.Body.Close()
	if err != nil {
		return nil, invalid("InvalidRequest", "reading the body: %v", err)
	}
	if len(b) > MaxBody {
		return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge", Msg: fmt.Sprintf("the body is over %d bytes", MaxBody)}
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// Authenticate implements api.AWSEndpoint: the request's AWS signature
// against the access key it names, or the metadata service's path key.
func (h *Handler) Authenticate(w http.ResponseWriter, r *http.Request) (api.Caller, bool) {
	if strings.HasPrefix(r.URL.Path, api.IMDSPrefix) {
		return h.imdsCaller(w, r)
	}
	body, berr := readBody(r)
	if berr != nil {
		h.writeError(w, serviceOf(r, "", nil), berr)
		return api.Caller{}, false
	}
	a, aerr := parseAuthorization(r.Header.Get("Authorization"))
	svc := serviceOf(r, a.Service, body)
	if aerr != nil {
		h.writeError(w, svc, &apiError{Status: http.StatusForbidden, Code: aerr.Code, Msg: aerr.Msg})
		return api.Caller{}, false
	}
	c, err := h.authenticate(r, a, body)
	if err != nil {
		h.writeError(w, svc, err)
		return api.Caller{}, false
	}
	return c, true
}

// authenticate finds the key and checks the signature.
func (h *Handler) authenticate(r *http.Request, a authHeader, body []byte) (api.Caller, *apiError) {
	denied := func(code, format string, args ...any) (api.Caller, *apiError) {
		return api.Caller{}, &apiError{Status: http.StatusForbidden, Code: code, Msg: fmt.Sprintf(format, args...)}
	}
	if _, ok := serviceTable[a.Service]; !ok {
		return denied("InvalidClientTokenId", "the credential scope's service %q is not one of this endpoint's (ec2, autoscaling, elasticloadbalancing, monitoring, ssm)", a.Service)
	}
	var secret string
	var c api.Caller
	if k, ok := h.keys[a.KeyID]; ok {
		secret, c = k.Secret, api.Caller{Name: k.Name, Role: k.Role}
	} else if id, s, session, ok := h.instanceKey(a.KeyID); ok {
		if r.Header.Get("X-Amz-Security-Token") != session || !contains(a.SignedHeaders, "x-amz-security-token") {
			return denied("InvalidClientTokenId", "the security token included in the request is invalid (instance %s's credentials need their session token, signed)", id)
		}
		g, ok := h.groupOf(id)
		if !ok {
			return denied("InvalidClientTokenId", "instance %s is gone: its credentials went with it", id)
		}
		secret, c = s, api.Caller{Name: "instance:" + id, Role: g.Config().APIRole, Instance: id}
	} else {
		return denied("InvalidClientTokenId", "the access key id %s is not in this endpoint's keys (api.aws_credentials_file)", a.KeyID)
	}
	if err := verify(r, a, secret, body, h.now()); err != nil {
		return denied(err.Code, "%s", err.Msg)
	}
	return c, nil
}

// instanceKey returns the instance an instance's access key id names, if
// its group gives its instances credentials.
func (h *Handler) instanceKey(keyID string) (id, secret, session string, ok bool) {
	if h.deps.Credentials == nil {
		return "", "", "", false
	}
	id, secret, session, ok = h.deps.Credentials.InstanceOfAWSKey(keyID)
	if !ok {
		return "", "", "", false
	}
	if g, found := h.groupOf(id); !found || g.Config().APIRole == "" {
		return "", "", "", false
	}
	return id, secret, session, true
}

// groupOf returns the group of a live instance.
func (h *Handler) groupOf(id string) (api.Group, bool) {
	for _, g := range h.groups {
		if in, ok := g.Instance(id); ok && in.State != group.Terminated {
			return g, true
		}
	}
	return nil, false
}

// serviceOf returns the service a request is for: the credential scope's
// when given, else the one the request's protocol names (the leader
// serving a follower's forwarded call sees no Authorization): the JSON
// protocol's X-Amz-Target, the Query protocol's Version in body (or the
// URL's query).
func serviceOf(r *http.Request, scope string, body []byte) *service {
	if s, ok := serviceTable[scope]; ok {
		return s
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		prefix, _, _ := strings.Cut(t, ".")
		for _, s := range serviceTable {
			if s.target != "" && s.target == prefix {
				return s
			}
		}
	}
	version := r.URL.Query().Get("Version")
	if v, err := url.ParseQuery(string(body)); err == nil && v.Get("Version") != "" {
		version = v.Get("Version")
	}
	for _, s := range serviceTable {
		if s.version != "" && s.version == version {
			return s
		}
	}
	return nil
}

// Serve implements api.AWSEndpoint.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, c api.Caller) {
	if strings.HasPrefix(r.URL.Path, api.IMDSPrefix) {
		h.serveIMDS(w, r, c)
		return
	}
	body, berr := readBody(r)
	svc := serviceOf(r, scopeService(r), body)
	if svc == nil {
		h.writeError(w, nil, invalid("UnknownService", "the request names no service of this endpoint: sign it for ec2, autoscaling, elasticloadbalancing, monitoring or ssm"))
		return
	}
	if berr != nil {
		h.writeError(w, svc, berr)
		return
	}
	cl := &call{ctx: r.Context(), caller: c, body: body}
	if svc.protocol == json11 {
		_, cl.action, _ = strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	} else {
		params := r.URL.Query()
		if r.Method == http.MethodPost {
			form, err := url.ParseQuery(string(body))
			if err != nil {
				h.writeError(w, svc, invalid("MalformedQueryString", "the body is not a form: %v", err))
				return
			}
			for k, vs := range form {
				params[k] = append(params[k], vs...)
			}
		}
		cl.params, cl.action = params, params.Get("Action")
	}
	act, ok := svc.actions[cl.action]
	if !ok {
		h.writeError(w, svc, invalid("InvalidAction", "%s has no action %q here; implemented: %s", svc.name, cl.action, strings.Join(actionNames(svc), ", ")))
		return
	}
	if !c.Allows(act.need) && !(act.self && c.Instance != "") {
		role := c.Role
		if role == "" {
			role = "none"
		}
		err := &apiError{Status: http.StatusForbidden, Code: "AccessDenied", Msg: fmt.Sprintf("%s is not authorized to perform %s:%s: it needs role %s and has %s", c.Name, svc.name, cl.action, act.need, role)}
		if svc.protocol == ec2Query {
			err.Code = "UnauthorizedOperation"
		}
		h.audit(r, c, svc, cl.action, err.Status)
		h.writeError(w, svc, err)
		return
	}
	out, err := act.run(h, cl)
	status := http.StatusOK
	if err != nil {
		e := asAPIError(err)
		status = e.Status
		h.writeError(w, svc, e)
	} else {
		h.write(w, svc, cl.action, out)
	}
	// Calls that change state are journaled; metric pushes only when
	// refused, as POST /v1/metrics.
	if act.need != config.RoleViewer && (cl.action != "PutMetricData" || status != http.StatusOK) {
		h.audit(r, c, svc, cl.action, status)
	}
}

// scopeService is the signing name in a request's Authorization, if any.
func scopeService(r *http.Request) string {
	a, err := parseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return ""
	}
	return a.Service
}

// asAPIError maps autoheal's errors to AWS's: an action's own, and
// what any action may meet (a controller stopping, a state dir that takes
// no writes: nothing was done, try again) as AWS's ServiceUnavailable.
func asAPIError(err error) *apiError {
	var e *apiError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.Canceled):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Msg: "the controller is stopping: " + err.Error()}
	case errors.Is(err, store.ErrNotWritable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable", Msg: "nothing was done: " + err.Error()}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "InternalFailure", Msg: err.Error()}
}

func actionNames(s *service) []string { return slices.Sorted(maps.Keys(s.actions)) }

// ec2Result is embedded first in EC2's results: EC2 puts the request id
// among the result's own fields, in the response element.
type ec2Result struct {
	RequestID string `xml:"requestId"`
}

func (r *ec2Result) setRequestID(id string) { r.RequestID = id }

// requestID is a fresh request id, a UUID like AWS's.
func requestID() string { return awsid.NewUUID() }

// write answers a result in the service's protocol.
func (h *Handler) write(w http.ResponseWriter, svc *service, action string, out any) {
	id := requestID()
	w.Header().Set("X-Amzn-RequestId", id)
	if svc.protocol == json11 {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if out == nil {
			out = struct{}{}
		}
		b, err := json.Marshal(out)
		if err != nil {
			h.writeError(w, svc, asAPIError(err))
			return
		}
		w.Write(b)
		return
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	fmt.Fprintf(&buf, `<%sResponse xmlns="%s">`, action, svc.xmlns)
	enc := xml.NewEncoder(&buf)
	if svc.protocol == ec2Query {
		if out == nil {
			out = &ec2Result{}
		}
		if r, ok := out.(interface{ setRequestID(string) }); ok {
			r.setRequestID(id)
		}
		buf.Reset()
		buf.WriteString(xml.Header)
		start := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: svc.xmlns}}}
		if err := enc.EncodeElement(out, start); err != nil {
			h.writeError(w, svc, asAPIError(err))
			return
		}
		enc.Flush()
		w.Header().Set("Content-Type", "text/xml")
		w.Write(buf.Bytes())
		return
	} else {
		if out != nil {
			if err := enc.EncodeElement(out, xml.StartElement{Name: xml.Name{Local: action + "Result"}}); err != nil {
				h.writeError(w, svc, asAPIError(err))
				return
			}
			enc.Flush()
		}
		fmt.Fprintf(&buf, "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>", id)
	}
	fmt.Fprintf(&buf, "</%sResponse>", action)
	w.Header().Set("Content-Type", "text/xml")
	w.Write(buf.Bytes())
}

// writeError answers an error in the service's format (svc nil: the
// Query protocol's, which every SDK reads).
func (h *Handler) writeError(w http.ResponseWriter, svc *service, e *apiError) {
	id := requestID()
	w.Header().Set("X-Amzn-RequestId", id)
	if svc != nil && svc.protocol == json11 {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", e.Code)
		w.WriteHeader(e.Status)
		json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Msg})
		return
	}
	var msg bytes.Buffer
	xml.EscapeText(&msg, []byte(e.Msg))
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(e.Status)
	if svc != nil && svc.protocol == ec2Query {
		fmt.Fprintf(w, `%s<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>`,
			xml.Header, e.Code, msg.String(), id)
		return
	}
	kind, ns := "Sender", ""
	if e.Status >= 500 {
		kind = "Receiver"
	}
	if svc != nil {
		ns = svc.xmlns
	}
	fmt.Fprintf(w, `%s<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
		xml.Header, ns, kind, e.Code, msg.String(), id)
}

// audit journals a call that changes state (and a refused one).
func (h *Handler) audit(r *http.Request, c api.Caller, svc *service, action string, status int) {
	if h.deps.Journal == nil {
		return
	}
	path := "aws " + svc.name + ":" + action
	ev := store.Event{
		Type: event.KindAPIAudit, Instance: c.Instance,
		Message: fmt.Sprintf("%s %s -> %d", c.Name, path, status),
		Data:    event.APIAudit{Token: c.Name, Role: c.Role, Method: r.Method, Path: path, Status: status, Remote: r.RemoteAddr},
	}
	if _, err := h.deps.Journal.Append(context.WithoutCancel(r.Context()), ev); err != nil {
		h.log.Warn("audit event", "err", err, "caller", c.Name, "action", path)
	}
}
