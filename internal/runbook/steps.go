package runbook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ohler55/ojg/jp"

	"github.com/autoheal/autoheal/internal/event"
	"github.com/autoheal/autoheal/internal/store"
)

// outputs applies the step's output selectors to its result.
func (e *Engine) outputs(r *run, st *Step, se *StepExecution, res any) error {
	if len(st.Outputs) == 0 {
		return nil
	}
	data := normalize(res)
	se.Outputs = map[string]any{}
	for _, o := range st.Outputs {
		x, err := jp.ParseString(o.Selector)
		if err != nil {
			return fmt.Errorf("output %s: selector %q: %v", o.Name, o.Selector, err)
		}
		vals := x.Get(data)
		v, err := convertOutput(vals, o.Type)
		if err != nil {
			return fmt.Errorf("output %s (%s): %v", o.Name, o.Selector, err)
		}
		se.Outputs[o.Name] = v
		r.ex.Outputs[st.Name+"."+o.Name] = v
	}
	return nil
}

func convertOutput(vals []any, typ string) (any, error) {
	switch typ {
	case "StringList":
		out := []string{}
		for _, v := range vals {
			if l, ok := v.([]any); ok {
				for _, x := range l {
					out = append(out, stringOf(x))
				}
				continue
			}
			out = append(out, stringOf(v))
		}
		return out, nil
	case "MapList":
		return vals, nil
	}
	if len(vals) == 0 {
		return nil, errors.New("selector matched nothing")
	}
	v := vals[0]
	switch typ {
	case "Integer":
		switch n := v.(type) {
		case int64:
			return n, nil
		case float64:
			return int64(n), nil
		case string:
			return strconv.ParseInt(n, 10, 64)
		}
		return nil, fmt.Errorf("%v is not an integer", v)
	case "Boolean":
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			return strconv.ParseBool(b)
		}
		return nil, fmt.Errorf("%v is not a boolean", v)
	case "StringMap":
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
		return nil, fmt.Errorf("%v is not a map", v)
	}
	return stringOf(v), nil
}

func stringOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// normalize turns a Go value into the generic JSON shape JSONPath reads.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// lookup resolves {{ }} references: parameters, step outputs, globals.
func (r *run) lookup(name string) (any, bool) {
	ex := r.ex
	if v, ok := ex.Parameters[name]; ok {
		return v, true
	}
	if v, ok := ex.Outputs[name]; ok {
		return v, true
	}
	switch name {
	case "automation:EXECUTION_ID":
		return ex.ID, true
	case "automation:DOCUMENT_NAME":
		return ex.Document, true
	case "global:DATE_TIME":
		return time.Now().UTC().Format("2006-01-02_15.04.05"), true
	case "global:DATE":
		return time.Now().UTC().Format("2006-01-02"), true
	}
	return nil, false
}

// action runs one attempt of step i. next is the chosen step for a
// branch, else -2.
func (e *Engine) action(ctx context.Context, r *run, i int, in map[string]any) (res any, next int, err error) {
	st := r.doc.MainSteps[i]
	next = -2
	switch st.Action {
	case ActionRunCommand:
		res, err = e.runCommand(ctx, r, in)
	case ActionExecuteAPI:
		if _, ok := in["Service"]; ok {
			res, err = e.awsCall(ctx, in)
		} else {
			res, err = e.callAPI(ctx, str(in, "Method", "GET"), str(in, "Path", ""), in["Body"])
		}
	case ActionAssertProperty:
		res, err = e.assertProperty(ctx, in)
	case ActionWaitForProperty:
		res, err = e.waitForProperty(ctx, in)
	case ActionExecuteAutomation:
		res, err = e.executeAutomation(ctx, r, i, in)
	case ActionSleep:
		err = e.sleep(ctx, r, i, in)
	case ActionApprove:
		res, err = e.approve(ctx, r, i, in)
	case ActionBranch:
		var name string
		name, err = branch(in)
		if err == nil {
			next = r.index(name)
			res = map[string]any{"NextStep": name}
		}
	default:
		err = fmt.Errorf("unknown action %q", st.Action)
	}
	return res, next, err
}

func str(in map[string]any, key, def string) string {
	if v, ok := in[key]; ok && v != nil {
		return stringOf(v)
	}
	return def
}

func strList(v any) []string {
	switch x := v.(type) {
	case []string:
		return x
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			out = append(out, stringOf(e))
		}
		return out
	case string:
		if x == "" {
			return nil
		}
		return strings.Split(x, ",")
	}
	return nil
}

// runCommand runs the script on each instance in turn. Document
// parameters reach the script as environment variables, never as text.
func (e *Engine) runCommand(ctx context.Context, r *run, in map[string]any) (any, error) {
	ids := strList(in["InstanceIds"])
	if id := str(in, "InstanceId", ""); id != "" {
		ids = append(ids, id)
	}
	script := str(in, "Script", "")
	if cmds := strList(in["Commands"]); script == "" && len(cmds) > 0 {
		if l, ok := in["Commands"].([]any); ok {
			cmds = cmds[:0]
			for _, c := range l {
				cmds = append(cmds, stringOf(c))
			}
		}
		script = strings.Join(cmds, "\n")
	}
	env := map[string]string{}
	for k, v := range r.ex.Parameters {
		env[k] = envValue(v)
	}
	if m, ok := in["Env"].(map[string]any); ok {
		for k, v := range m {
			env[k] = envValue(v)
		}
	}
	limit := 24000
	if n, err := strconv.Atoi(str(in, "OutputLimitBytes", "")); err == nil && n > 0 {
		limit = n
	}
	deadline, _ := ctx.Deadline()
	results := map[string]any{}
	var last CommandResult
	for _, id := range ids {
		reboots := 0
		for {
			res, err := e.deps.Command(ctx, CommandRequest{
				InstanceID: id, Script: script, Env: env, Dir: str(in, "WorkingDirectory", ""),
				Limit: limit, Timeout: time.Until(deadline),
			})
			if err != nil {
				return results, fmt.Errorf("instance %s: %w", id, err)
			}
			last = res
			results[id] = map[string]any{"ExitCode": res.ExitCode, "Stdout": res.Stdout, "Stderr": res.Stderr}
			if res.TimedOut {
				return results, fmt.Errorf("instance %s: script timed out", id)
			}
			if res.ExitCode == 194 && reboots < 10 {
				// As SSM: 194 asks for a reboot, then the script runs again.
				reboots++
				if err := e.deps.Restart(ctx, id); err != nil {
					return results, fmt.Errorf("instance %s: restart asked by exit 194: %w", id, err)
				}
				continue
			}
			if res.ExitCode != 0 {
				return results, fmt.Errorf("instance %s: script exited %d: %s", id, res.ExitCode, tail(res.Stderr, 200))
			}
			break
		}
	}
	out := map[string]any{"ExitCode": last.ExitCode, "Stdout": last.Stdout, "Stderr": last.Stderr, "Instances": results}
	if loc := str(in, "OutputLocation", ""); loc != "" {
		out["OutputLocation"] = loc
	}
	return out, nil
}

func envValue(v any) string {
	if l, ok := v.([]string); ok {
		return strings.Join(l, ",")
	}
	return stringOf(v)
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// APIResult is what executeApi and the property actions see: the status
// code and the decoded JSON payload.
type APIResult struct {
	Status  int `json:"Status"`
	Payload any `json:"Payload"`
}

// callAPI calls autoheal's own API in process.
func (e *Engine) callAPI(ctx context.Context, method, path string, body any) (APIResult, error) {
	if !strings.HasPrefix(path, "/v1/") {
		return APIResult{}, fmt.Errorf("path %q: must start with /v1/", path)
	}
	// A parameter substituted into the path must not climb out of it.
	if p, _, _ := strings.Cut(path, "?"); strings.Contains("/"+p+"/", "/../") || strings.Contains("/"+p+"/", "/./") {
		return APIResult{}, fmt.Errorf("path %q: . and .. segments are not allowed", path)
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return APIResult{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://autoheal.internal"+path, rd)
	if err != nil {
		return APIResult{}, err
	}
	req.RemoteAddr = "127.0.0.1:0"
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	w := &recorder{header: http.Header{}, code: 200}
	e.deps.API.ServeHTTP(w, req)
	res := APIResult{Status: w.code}
	if w.body.Len() > 0 {
		if err := json.Unmarshal(w.body.Bytes(), &res.Payload); err != nil {
			res.Payload = w.body.String()
		}
	}
	if w.code >= 300 {
		msg := w.body.String()
		if m, ok := res.Payload.(map[string]any); ok && m["error"] != nil {
			msg = stringOf(m["error"])
		}
		return res, fmt.Errorf("%s %s: %d: %s", method, path, w.code, strings.TrimSpace(msg))
	}
	return res, nil
}

// recorder is an in-memory http.ResponseWriter.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
	wrote  bool
}

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
}
func (w *recorder) Write(b []byte) (int, error) {
	w.wrote = true
	if w.body.Len() > 8<<20 {
		return 0, errors.New("response too large")
	}
	return w.body.Write(b)
}
func (w *recorder) Flush() {}

// property reads the values the selector picks from an API answer.
func (e *Engine) property(ctx context.Context, in map[string]any) (APIResult, []any, error) {
	var res APIResult
	var err error
	if _, ok := in["Service"]; ok {
		// SSM's form: the selector reads AWS's response itself.
		res.Status = 200
		res.Payload, err = e.awsCall(ctx, in)
	} else {
		res, err = e.callAPI(ctx, str(in, "Method", "GET"), str(in, "Path", ""), in["Body"])
	}
	if err != nil {
		return res, nil, err
	}
	sel := str(in, "PropertySelector", "")
	x, err := jp.ParseString(sel)
	if err != nil {
		return res, nil, fmt.Errorf("selector %q: %v", sel, err)
	}
	return res, x.Get(normalize(res.Payload)), nil
}

// matches reports whether every selected value is a desired one (and
// something was selected).
func matches(vals []any, desired []string) bool {
	if len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		if !slices.Contains(desired, stringOf(v)) {
			return false
		}
	}
	return true
}

func (e *Engine) assertProperty(ctx context.Context, in map[string]any) (any, error) {
	res, vals, err := e.property(ctx, in)
	if err != nil {
		return res, err
	}
	desired := strList(in["DesiredValues"])
	if !matches(vals, desired) {
		return map[string]any{"Values": vals}, fmt.Errorf("%s is %s, want each of %v", str(in, "PropertySelector", ""), show(vals), desired)
	}
	return map[string]any{"Values": vals}, nil
}

func show(vals []any) string {
	if len(vals) == 0 {
		return "nothing"
	}
	b, _ := json.Marshal(vals)
	return string(b)
}

func (e *Engine) waitForProperty(ctx context.Context, in map[string]any) (any, error) {
	interval := 2 * time.Second
	if n, err := strconv.ParseFloat(str(in, "PollIntervalSeconds", ""), 64); err == nil && n > 0 {
		interval = time.Duration(n * float64(time.Second))
	}
	desired := strList(in["DesiredValues"])
	var last []any
	for {
		_, vals, err := e.property(ctx, in)
		if err == nil && matches(vals, desired) {
			return map[string]any{"Values": vals}, nil
		}
		if err == nil {
			last = vals
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			if err != nil {
				return nil, err
			}
			return map[string]any{"Values": last}, fmt.Errorf("%s was still %s, want each of %v", str(in, "PropertySelector", ""), show(last), desired)
		}
	}
}

// executeAutomation runs a nested document and waits for it. The child's
// id was recorded with the attempt (attempt), and StartAs starts nothing
// for an id that exists: a resumed step waits for the child it started,
// which the engine resumed, and never starts a second one.
func (e *Engine) executeAutomation(ctx context.Context, r *run, i int, in map[string]any) (any, error) {
	se := &r.ex.Steps[i]
	if se.Child == "" {
		return nil, errors.New("no child execution id recorded")
	}
	params := map[string]string{}
	if m, ok := in["RuntimeParameters"].(map[string]any); ok {
		for k, v := range m {
			if l := strList(v); l != nil && isList(v) {
				b, _ := json.Marshal(l)
				params[k] = string(b)
				continue
			}
			params[k] = stringOf(v)
		}
	}
	if err := e.startChild(ctx, se.Child, str(in, "DocumentName", ""), params, r.ex.ID); err != nil {
		return nil, err
	}
	status, err := e.Wait(ctx, se.Child)
	if err != nil {
		if ctx.Err() != nil && e.ctx.Err() == nil {
			// Cancelled or timed out, not the controller stopping (then
			// the child stays as recorded and resumes with its parent).
			e.Cancel(context.WithoutCancel(ctx), se.Child)
			e.Wait(context.WithoutCancel(ctx), se.Child)
		}
		return nil, err
	}
	child, _ := e.Get(ctx, se.Child)
	res := map[string]any{"ExecutionId": se.Child, "Status": status, "Output": child.Outputs}
	if status != StatusSuccess {
		return res, fmt.Errorf("nested execution %s of %s ended %s: %s", se.Child, child.Document, status, child.Error)
	}
	return res, nil
}

// startChild starts the nested execution id of parent, unless it exists.
func (e *Engine) startChild(ctx context.Context, id, document string, params map[string]string, parent string) error {
	e.startMu.Lock()
	defer e.startMu.Unlock()
	if ok, err := e.Exists(ctx, id); err != nil || ok {
		return err
	}
	return e.start(ctx, id, document, params, "execution:"+parent, parent)
}

func isList(v any) bool {
	switch v.(type) {
	case []any, []string:
		return true
	}
	return false
}

func (e *Engine) sleep(ctx context.Context, r *run, i int, in map[string]any) error {
	var until time.Time
	if ts := str(in, "Timestamp", ""); ts != "" {
		t, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return fmt.Errorf("timestamp %q: %v", ts, err)
		}
		until = t
	} else {
		d, err := ParseDuration(str(in, "Duration", ""))
		if err != nil {
			return fmt.Errorf("duration %q: %v", str(in, "Duration", ""), err)
		}
		// Measured from the step's recorded start, so a resumed sleep only
		// sleeps what is left.
		until = r.ex.Steps[i].StartedAt.Add(d)
	}
	if !e.sleepUntil(ctx, until) {
		return ctx.Err()
	}
	return nil
}

// approve waits for MinRequiredApprovals answers. Every answer is recorded
// as it comes, so a resumed step counts those given to this visit of the
// step before the restart, and a rejection among them ends it.
func (e *Engine) approve(ctx context.Context, r *run, i int, in map[string]any) (any, error) {
	need := 1
	if n, err := strconv.Atoi(str(in, "MinRequiredApprovals", "")); err == nil && n > 0 {
		need = n
	}
	se := &r.ex.Steps[i]
	got := 0
	for _, a := range r.ex.Approvals {
		if a.Step != se.Name || (se.StartedAt != nil && a.Time.Before(*se.StartedAt)) {
			continue // another step's, or an earlier visit's
		}
		if !a.Approved {
			return rejected(a)
		}
		got++
	}
	if got >= need {
		return map[string]any{"ApprovalStatus": "Approved", "Approvals": got}, nil
	}
	se.Status = StatusWaiting
	r.ex.Status = StatusWaiting
	e.persist(ctx, r, store.Event{Type: event.KindExecutionApproval, Message: fmt.Sprintf("execution %s waits for approval at step %s: %s (autoheal executions approve %s)", r.ex.ID, se.Name, str(in, "Message", ""), r.ex.ID),
		Data: event.ExecutionApproval{Execution: ofExecution(r.ex.ID, r.ex.Document), Step: se.Name, Message: str(in, "Message", "")}})
	defer func() {
		r.ex.Status = StatusInProgress
		se.Status = StatusInProgress
	}()
	for got < need {
		select {
		case a := <-r.answers:
			r.ex.Approvals = append(r.ex.Approvals, a)
			e.persist(ctx, r)
			if !a.Approved {
				return rejected(a)
			}
			got++
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return map[string]any{"ApprovalStatus": "Approved", "Approvals": got}, nil
}

func rejected(a Approval) (any, error) {
	return map[string]any{"ApprovalStatus": "Rejected", "Approver": a.Approver}, fmt.Errorf("rejected by %s: %s", a.Approver, a.Comment)
}

// branch picks the next step from the first choice that holds.
func branch(in map[string]any) (string, error) {
	choices, _ := in["Choices"].([]any)
	for _, c := range choices {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		ok, err := choice(m)
		if err != nil {
			return "", err
		}
		if ok {
			return stringOf(m["NextStep"]), nil
		}
	}
	if d := str(in, "Default", ""); d != "" {
		return d, nil
	}
	return "", errors.New("no choice matched and there is no Default")
}

// choice evaluates one choice (or a nested And/Or/Not operand).
func choice(m map[string]any) (bool, error) {
	if l, ok := m["And"].([]any); ok {
		for _, x := range l {
			xm, _ := x.(map[string]any)
			if ok, err := choice(xm); err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	}
	if l, ok := m["Or"].([]any); ok {
		for _, x := range l {
			xm, _ := x.(map[string]any)
			if ok, err := choice(xm); err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	}
	if x, ok := m["Not"].(map[string]any); ok {
		ok, err := choice(x)
		return !ok, err
	}
	v := m["Variable"]
	for op, want := range m {
		if ok, known, err := choiceCompare(op, v, want); known {
			return ok, err
		}
	}
	return false, errors.New("choice has no operator")
}

// choiceCompare applies the comparison operator op to a choice's Variable
// v and the operand want. known is false when op is no comparison operator
// (the choice's Variable or NextStep).
func choiceCompare(op string, v, want any) (ok, known bool, err error) {
	s, w := stringOf(v), stringOf(want)
	switch op {
	case "StringEquals":
		return s == w, true, nil
	case "EqualsIgnoreCase":
		return strings.EqualFold(s, w), true, nil
	case "StartsWith":
		return strings.HasPrefix(s, w), true, nil
	case "EndsWith":
		return strings.HasSuffix(s, w), true, nil
	case "Contains":
		return choiceContains(v, w), true, nil
	case "BooleanEquals":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, true, fmt.Errorf("BooleanEquals: %q is not a boolean", s)
		}
		return b == (w == "true"), true, nil
	case "NumericEquals", "NumericGreater", "NumericLesser", "NumericGreaterOrEquals", "NumericLesserOrEquals":
		ok, err := choiceNumeric(op, s, w)
		return ok, true, err
	}
	return false, false, nil
}

// choiceContains is the Contains operator: membership when the Variable v
// is a list, a substring otherwise.
func choiceContains(v any, want string) bool {
	switch l := v.(type) {
	case []string:
		return slices.Contains(l, want)
	case []any:
		for _, x := range l {
			if stringOf(x) == want {
				return true
			}
		}
		return false
	}
	return strings.Contains(stringOf(v), want)
}

// choiceNumeric applies the numeric operator op to the numbers written
// as and bs.
func choiceNumeric(op, as, bs string) (bool, error) {
	a, err1 := strconv.ParseFloat(as, 64)
	b, err2 := strconv.ParseFloat(bs, 64)
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("numeric comparison of %q and %q", as, bs)
	}
	switch op {
	case "NumericEquals":
		return a == b, nil
	case "NumericGreater":
		return a > b, nil
	case "NumericLesser":
		return a < b, nil
	case "NumericGreaterOrEquals":
		return a >= b, nil
	default:
		return a <= b, nil
	}
}
