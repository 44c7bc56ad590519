package alerts

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"lookout/config"
)

// Defaults of the routing tree (Alertmanager's 30s/5m scaled down: on a
// live-commerce crisis minutes matter).
const (
	DefaultGroupWait     = 5 * time.Second
	DefaultGroupInterval = time.Minute
)

// DefaultGroupBy groups by room: a storm in one live room becomes one
// message with a count.
var DefaultGroupBy = []string{"room"}

// Route is one node of the routing tree. An event walks the tree depth
// first (Alertmanager's model): it goes to the first child that matches
// (and on to later siblings when that child has continue: true); when no
// child matches, the node itself takes it. Children inherit receiver,
// group_by, group_wait and group_interval.
type Route struct {
	ID            string // position in the tree: "0", "0.1", "0.1.0"
	Receiver      string
	GroupBy       []string // "..." groups by every label (no grouping)
	GroupWait     time.Duration
	GroupInterval time.Duration
	Continue      bool
	Routes        []*Route

	match []routeMatcher
}

type routeMatcher struct {
	name  string
	value string
	re    *regexp.Regexp // value written "~regex"
}

func (m routeMatcher) matches(labels map[string]string) bool {
	v := labels[m.name]
	if m.re != nil {
		return m.re.MatchString(v)
	}
	return v == m.value
}

// NewRoute builds the routing tree from config.
func NewRoute(rc config.RouteConfig) (*Route, error) {
	parent := &Route{GroupBy: DefaultGroupBy, GroupWait: DefaultGroupWait, GroupInterval: DefaultGroupInterval}
	return routeBuild(rc, parent, "0")
}

func routeBuild(rc config.RouteConfig, parent *Route, id string) (*Route, error) {
	r := &Route{ID: id, Receiver: parent.Receiver, GroupBy: parent.GroupBy, GroupWait: parent.GroupWait,
		GroupInterval: parent.GroupInterval, Continue: rc.Continue}
	if rc.Receiver != "" {
		r.Receiver = rc.Receiver
	}
	if len(rc.GroupBy) > 0 {
		r.GroupBy = rc.GroupBy
	}
	if rc.GroupWait > 0 || rc.GroupWaitSet {
		r.GroupWait = rc.GroupWait.D()
	}
	if rc.GroupInterval > 0 || rc.GroupIntervalSet {
		r.GroupInterval = rc.GroupInterval.D()
	}
	names := make([]string, 0, len(rc.Match))
	for k := range rc.Match {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := rc.Match[k]
		m := routeMatcher{name: k, value: v}
		if strings.HasPrefix(v, "~") {
			re, err := regexp.Compile("^(?:" + v[1:] + ")$")
			if err != nil {
				return nil, fmt.Errorf("route %s: match %s: %w", id, k, err)
			}
			m.re = re
		}
		r.match = append(r.match, m)
	}
	for i, c := range rc.Routes {
		child, err := routeBuild(c, r, fmt.Sprintf("%s.%d", id, i))
		if err != nil {
			return nil, err
		}
		r.Routes = append(r.Routes, child)
	}
	return r, nil
}

func (r *Route) matches(labels map[string]string) bool {
	for _, m := range r.match {
		if !m.matches(labels) {
			return false
		}
	}
	return true
}

// Match returns the routes that take an event with these labels.
func (r *Route) Match(labels map[string]string) []*Route {
	if !r.matches(labels) {
		return nil
	}
	var out []*Route
	for _, c := range r.Routes {
		got := c.Match(labels)
		out = append(out, got...)
		if len(got) > 0 && !c.Continue {
			break
		}
	}
	if len(out) == 0 {
		out = []*Route{r}
	}
	return out
}

// GroupKey names the group an event joins on this route: the route's id
// and the values of its group_by labels, e.g. `0.1{room="21452505"}`.
func (r *Route) GroupKey(ev *Event, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(r.ID)
	b.WriteByte('{')
	for i, k := range r.GroupBy {
		if k == "..." {
			b.Reset()
			b.WriteString(r.ID + "{alert=" + fmt.Sprintf("%q", ev.AlertID))
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteByte('}')
	return b.String()
}

// EventLabels are the labels routing, silences and inhibition look at: the
// event's own labels plus rule, rule_kind, severity, state, room, source
// and platform from its fields.
func EventLabels(ev *Event) map[string]string {
	m := make(map[string]string, len(ev.Labels)+7)
	for k, v := range ev.Labels {
		m[k] = v
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("rule", ev.Rule)
	set("rule_kind", ev.RuleKind)
	set("severity", string(ev.Severity))
	set("state", string(ev.State))
	set("room", ev.Room)
	set("source", ev.Source)
	set("platform", ev.Platform)
	return m
}
