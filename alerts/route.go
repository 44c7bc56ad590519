package alerts

import (
	"fmt"
	"strings"
	"time"

	"lookout/config"
	"lookout/internal/labels"
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

	match labels.Matchers
}

// matchersOf joins a config block's map form and its matchers list.
func matchersOf(m map[string]string, list config.Matchers) (labels.Matchers, error) {
	ms, err := labels.FromMap(m)
	if err != nil {
		return nil, err
	}
	return append(ms, list...), nil
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
	ms, err := matchersOf(rc.Match, rc.Matchers)
	if err != nil {
		return nil, fmt.Errorf("route %s: match: %w", id, err)
	}
	r.match = ms
	for i, c := range rc.Routes {
		child, err := routeBuild(c, r, fmt.Sprintf("%s.%d", id, i))
		if err != nil {
			return nil, err
		}
		r.Routes = append(r.Routes, child)
	}
	return r, nil
}

// Match returns the routes that take an event with these labels.
func (r *Route) Match(ls map[string]string) []*Route {
	if !r.match.Matches(ls) {
		return nil
	}
	var out []*Route
	for _, c := range r.Routes {
		got := c.Match(ls)
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
