package config

import "testing"

func TestMatcher(t *testing.T) {
	for _, c := range []struct {
		matcher string
		yes, no []int
	}{
		{"200", []int{200}, []int{199, 201, 404}},
		{"200,204", []int{200, 204}, []int{201, 203, 205}},
		{"200-299", []int{200, 250, 299}, []int{199, 300}},
		{"200, 204-206, 302", []int{200, 204, 205, 206, 302}, []int{201, 207, 301}},
		{DefaultMatcher, []int{200, 301, 399}, []int{199, 400, 503}},
		{"", nil, []int{200}},
		{"2xx", nil, []int{200}},
	} {
		h := TargetHealthCheck{Matcher: c.matcher}
		for _, code := range c.yes {
			if !h.Matches(code) {
				t.Errorf("%q does not match %d", c.matcher, code)
			}
		}
		for _, code := range c.no {
			if h.Matches(code) {
				t.Errorf("%q matches %d", c.matcher, code)
			}
		}
	}
}

func TestTargetGroupMemberPort(t *testing.T) {
	for _, c := range []struct {
		port   string
		num    int
		isNum  bool
		name   string
		isName bool
	}{
		{"8080", 8080, true, "", false},
		{"http", 0, false, "http", true},
		{"", 0, false, "", false},
	} {
		m := TargetGroupMember{Port: c.port}
		n, isNum := m.PortNumber()
		name, isName := m.PortName()
		if n != c.num || isNum != c.isNum || name != c.name || isName != c.isName {
			t.Errorf("Port %q: PortNumber %d %v, PortName %q %v", c.port, n, isNum, name, isName)
		}
	}
}
