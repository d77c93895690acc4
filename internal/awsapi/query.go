package awsapi

import (
	"encoding/json"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// The Query protocol's parameters: lists are NAME.N (EC2) or
// NAME.member.N (the others), structures NAME.member.N.FIELD.

// queryList is a Query protocol list in a response: its members as
// <member> elements, and an empty element when there are none, which the
// SDKs read as [] (AWS writes it so).
type queryList[T any] struct {
	Member []T `xml:"member"`
}

// listOf makes a queryList.
func listOf[T any](v []T) queryList[T] { return queryList[T]{Member: v} }

// list returns the values of prefix.1, prefix.2, ... in order.
func list(p url.Values, prefix string) []string {
	var out []string
	for _, m := range indexed(p, prefix) {
		out = append(out, m.values.Get(""))
	}
	return out
}

// members returns the structures under prefix.N.: each with its fields
// (FIELD, FIELD.member.1...) as its own parameters, in N's order.
func members(p url.Values, prefix string) []url.Values {
	var out []url.Values
	for _, m := range indexed(p, prefix) {
		out = append(out, m.values)
	}
	return out
}

type member struct {
	n      int
	values url.Values
}

// indexed groups the parameters under prefix.N by N; the value of
// prefix.N itself is under "".
func indexed(p url.Values, prefix string) []member {
	byN := map[int]url.Values{}
	for k, vs := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 {
			continue
		}
		if byN[n] == nil {
			byN[n] = url.Values{}
		}
		byN[n][field] = vs
	}
	var out []member
	for n, v := range byN {
		out = append(out, member{n, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out
}

// intParam parses an optional integer parameter.
func intParam(p url.Values, name string) (*int, error) {
	v := p.Get(name)
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, invalid("ValidationError", "%s %q is not an integer", name, v)
	}
	return &n, nil
}

// decodeJSON decodes a JSON protocol request.
func decodeJSON(c *call, v any) error {
	if len(c.body) == 0 {
		return nil
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return invalid("SerializationException", "%s: the body is not the request's JSON: %v", c.action, err)
	}
	return nil
}
