package runbook

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/autoheal/autoheal/internal/awsid"
)

// SSM's form of the API actions (aws:executeAwsApi,
// aws:assertAwsResourceProperty, aws:waitForAwsResourceProperty): Service
// and Api with AWS's own request parameters, answered with AWS's own
// response shapes from autoheal's objects, so that a document's
// PropertySelectors ($.TargetHealthDescriptions..TargetHealth.State) work
// unchanged. What is implemented is in awsAPIs; a document that calls
// anything else fails validation with that list.

// awsAPI is one implemented API: its request parameters.
type awsAPI struct {
	params   []inputSpec
	required []string
}

var targetsParams = []inputSpec{{"TargetGroupArn", inText}, {"Targets", inAny}}

// awsAPIs are the implemented APIs by service.
var awsAPIs = map[string]map[string]awsAPI{
	"elbv2": {
		"DescribeTargetHealth": {params: targetsParams, required: []string{"TargetGroupArn"}},
		"RegisterTargets":      {params: targetsParams, required: []string{"TargetGroupArn", "Targets"}},
		"DeregisterTargets":    {params: targetsParams, required: []string{"TargetGroupArn", "Targets"}},
		"DescribeTargetGroups": {params: []inputSpec{{"Names", inList}, {"TargetGroupArns", inList}}},
	},
}

// awsImplemented lists the implemented APIs, "service:Api", sorted.
func awsImplemented() string {
	var out []string
	for s, apis := range awsAPIs {
		for a := range apis {
			out = append(out, s+":"+a)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// awsForm reports whether a step's inputs are in SSM's Service/Api form.
func awsForm(n *node) bool {
	if n == nil || n.kind != kindMap {
		return false
	}
	return slices.ContainsFunc(n.entries, func(e entry) bool { return e.key == "Service" })
}

// awsSpecs are the inputs of an API action in SSM's form: Service, Api,
// the property inputs of the property actions, and the API's parameters
// (none when the API is not known: validate reports it).
func awsSpecs(action string, in *node) []inputSpec {
	specs := []inputSpec{{"Service", inText}, {"Api", inText}}
	if action != ActionExecuteAPI {
		specs = append(specs, inputSpecs[action][2:]...) // PropertySelector, DesiredValues[, PollIntervalSeconds]
	}
	var service, api string
	for _, e := range in.entries {
		switch e.key {
		case "Service":
			service = e.val.text
		case "Api":
			api = e.val.text
		}
	}
	apis := awsAPIs[strings.ToLower(service)]
	if a, ok := apis[api]; ok {
		return append(specs, a.params...)
	}
	// An API not implemented is reported once (awsCheck), not each of
	// its parameters: every parameter of the service's APIs passes.
	for _, name := range slices.Sorted(maps.Keys(apis)) {
		for _, p := range apis[name].params {
			if !slices.Contains(specs, p) {
				specs = append(specs, p)
			}
		}
	}
	return specs
}

// awsCheck checks the Service and Api of a step in SSM's form and the
// API's required parameters and Targets.
func (sc *stepScope) awsCheck() {
	sn, ok1 := sc.require("Service", "the AWS service (elbv2)")
	an, ok2 := sc.require("Api", "the API to call")
	if !ok1 || !ok2 {
		return
	}
	service, sok := literal(sn)
	api, aok := literal(an)
	if !sok || !aok {
		sc.p.errorf(sn, "inputs.Service and inputs.Api: write them as text, not references")
		return
	}
	apis, ok := awsAPIs[strings.ToLower(service)]
	if !ok {
		sc.p.errorf(sn, "inputs.Service: %q is not implemented here; the APIs are %s", service, awsImplemented())
		return
	}
	a, ok := apis[api]
	if !ok {
		sc.p.errorf(an, "inputs.Api: %s %q is not implemented here%s; the APIs are %s", service, api, suggest(api, slices.Sorted(maps.Keys(apis)), ""), awsImplemented())
		return
	}
	for _, k := range a.required {
		sc.require(k, "as AWS's "+api+" takes it")
	}
	if n, ok := sc.inputs["Targets"]; ok {
		sc.targets(n)
	}
}

// targets checks an ELBv2 Targets list: mappings with an Id and
// optionally a Port, or one reference.
func (sc *stepScope) targets(n *node) {
	if _, whole := wholeRef(n.text); n.scalar() && whole {
		return
	}
	if n.kind != kindList || len(n.items) == 0 {
		sc.p.errorf(n, "inputs.Targets: expected a list of {Id: ..., Port: ...}, got %s", n.describe())
		return
	}
	for _, it := range n.items {
		if it.kind != kindMap {
			sc.p.errorf(it, "inputs.Targets: expected {Id: ..., Port: ...}, got %s", it.describe())
			continue
		}
		id := false
		for _, e := range it.entries {
			switch e.key {
			case "Id":
				id = true
			case "Port", "AvailabilityZone":
			default:
				sc.p.errorAt(e.line, e.col, "inputs.Targets: unknown field %q (Id, Port, AvailabilityZone)", e.key)
			}
		}
		if !id {
			sc.p.errorf(it, "inputs.Targets: a target needs its Id")
		}
	}
}

// targetGroupName is the target group an ELBv2 ARN names
// (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID), or
// the name itself.
func targetGroupName(arn string) (string, error) {
	if arn == "" {
		return "", fmt.Errorf("TargetGroupArn is empty")
	}
	name, err := awsid.TargetGroupName(arn)
	if err != nil {
		return "", fmt.Errorf("TargetGroupArn: %w", err)
	}
	return name, nil
}

// targetIDs are the Ids of an ELBv2 Targets input.
func targetIDs(v any) []string {
	var ids []string
	l, _ := v.([]any)
	for _, it := range l {
		if m, ok := it.(map[string]any); ok {
			ids = append(ids, stringOf(m["Id"]))
		}
	}
	return ids
}

// awsCall answers an API in SSM's form from autoheal's API, in process, in
// AWS's response shape.
func (e *Engine) awsCall(ctx context.Context, in map[string]any) (any, error) {
	service, api := strings.ToLower(str(in, "Service", "")), str(in, "Api", "")
	if _, ok := awsAPIs[service][api]; !ok {
		return nil, fmt.Errorf("%s %s is not implemented; the APIs are %s", service, api, awsImplemented())
	}
	if api == "DescribeTargetGroups" {
		return e.describeTargetGroups(ctx)
	}
	name, err := targetGroupName(str(in, "TargetGroupArn", ""))
	if err != nil {
		return nil, err
	}
	path := "/v1/target-groups/" + url.PathEscape(name)
	switch api {
	case "RegisterTargets", "DeregisterTargets":
		op := "register"
		if api == "DeregisterTargets" {
			op = "deregister"
		}
		for _, id := range targetIDs(in["Targets"]) {
			res, err := e.callAPI(ctx, "POST", path+"/"+op, map[string]any{"id": id})
			if err == nil && res.Status >= 300 {
				err = fmt.Errorf("%s %s: %s", api, id, apiError(res))
			}
			if err != nil {
				return nil, err
			}
		}
		return map[string]any{}, nil
	}
	res, err := e.callAPI(ctx, "GET", path+"/health", nil)
	if err == nil && res.Status >= 300 {
		err = fmt.Errorf("DescribeTargetHealth: %s", apiError(res))
	}
	if err != nil {
		return nil, err
	}
	return targetHealthDescriptions(res.Payload, targetIDs(in["Targets"])), nil
}

// targetHealthDescriptions is autoheal's target health in ELBv2's
// DescribeTargetHealth shape: every target, or those asked for, in the
// order asked, one that is not registered "unused" with AWS's reason.
func targetHealthDescriptions(payload any, ids []string) map[string]any {
	type th struct{ id, port, state, reason string }
	var all []th
	if m, ok := payload.(map[string]any); ok {
		l, _ := m["targets"].([]any)
		for _, t := range l {
			tm, _ := t.(map[string]any)
			_, port, _ := net.SplitHostPort(stringOf(tm["address"]))
			all = append(all, th{id: stringOf(tm["id"]), port: port, state: stringOf(tm["state"]), reason: stringOf(tm["reason"])})
		}
	}
	describe := func(t th) map[string]any {
		target := map[string]any{"Id": t.id}
		if p, err := strconv.Atoi(t.port); err == nil {
			target["Port"] = p
		}
		health := map[string]any{"State": t.state}
		if t.reason != "" {
			health["Description"] = t.reason
		}
		return map[string]any{"Target": target, "HealthCheckPort": t.port, "TargetHealth": health}
	}
	out := []any{}
	if len(ids) == 0 {
		for _, t := range all {
			out = append(out, describe(t))
		}
	}
	for _, id := range ids {
		i := slices.IndexFunc(all, func(t th) bool { return t.id == id })
		if i < 0 {
			nr := awsid.TargetNotRegistered()
			out = append(out, map[string]any{"Target": map[string]any{"Id": id},
				"TargetHealth": map[string]any{"State": nr.State, "Reason": nr.Reason, "Description": nr.Description}})
			continue
		}
		out = append(out, describe(all[i]))
	}
	return map[string]any{"TargetHealthDescriptions": out}
}

// describeTargetGroups is ELBv2's DescribeTargetGroups of autoheal's.
func (e *Engine) describeTargetGroups(ctx context.Context) (any, error) {
	res, err := e.callAPI(ctx, "GET", "/v1/target-groups", nil)
	if err == nil && res.Status >= 300 {
		err = fmt.Errorf("DescribeTargetGroups: %s", apiError(res))
	}
	if err != nil {
		return nil, err
	}
	out := []any{}
	l, _ := res.Payload.([]any)
	for _, t := range l {
		tm, _ := t.(map[string]any)
		name := stringOf(tm["name"])
		out = append(out, map[string]any{"TargetGroupName": name, "TargetGroupArn": awsid.TargetGroupARN(name),
			"Protocol": strings.ToUpper(stringOf(tm["protocol"]))})
	}
	return map[string]any{"TargetGroups": out}, nil
}

// apiError is the message of an API error answer.
func apiError(res APIResult) string {
	if m, ok := res.Payload.(map[string]any); ok && m["error"] != nil {
		return stringOf(m["error"])
	}
	return "status " + strconv.Itoa(res.Status)
}
