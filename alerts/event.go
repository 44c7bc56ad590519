package alerts

import (
	"context"
	"time"
)

// Severity is the KPI light of an alert (红黄绿灯).
type Severity string

const (
	Green  Severity = "green"
	Yellow Severity = "yellow"
	Red    Severity = "red"
)

// Rank orders severities: green 1, yellow 2, red 3, anything else 0.
func (s Severity) Rank() int {
	switch s {
	case Green:
		return 1
	case Yellow:
		return 2
	case Red:
		return 3
	}
	return 0
}

// State is where an alert is in its lifecycle.
type State string

const (
	Inactive State = "inactive"
	Pending  State = "pending"
	Firing   State = "firing"
	Resolved State = "resolved"
)

// Sample is one item quoted in an alert so people see what was said.
type Sample struct {
	Source string    `json:"source"`
	Author string    `json:"author"`
	Text   string    `json:"text"`
	TS     time.Time `json:"ts"`
	Score  float64   `json:"score"`
}

// Event is one state change of one alert. The engine produces it; the
// delivery side stores it, routes it and sends it. It is the unit of
// idempotence: ID is stable, so a resend after a crash can be recognised.
type Event struct {
	ID      string `json:"id"`       // stable: AlertID + "/" + Seq
	AlertID string `json:"alert_id"` // stable for one alert instance (rule + key + start)
	Seq     int    `json:"seq"`      // 1, 2, … per alert instance

	Rule     string   `json:"rule"`
	RuleKind string   `json:"rule_kind"`
	Severity Severity `json:"severity"`
	State    State    `json:"state"`
	Prev     State    `json:"prev"`
	// PrevSeverity is the severity people were last told about (empty
	// before the first firing notice): firing with Prev firing and a lower
	// PrevSeverity is an escalation, with the same severity a reminder.
	PrevSeverity Severity `json:"prev_severity,omitempty"`

	// Labels: at least rule, severity, source, platform, room; category
	// for keyword rules; plus the source's own labels.
	Labels map[string]string `json:"labels"`

	Source   string `json:"source"`
	Platform string `json:"platform"`
	Room     string `json:"room"`

	StartedAt  time.Time     `json:"started_at"`
	At         time.Time     `json:"at"` // when this change happened
	ResolvedAt time.Time     `json:"resolved_at,omitzero"`
	Window     time.Duration `json:"window"`

	Value     float64 `json:"value"`     // the number that crossed
	Threshold float64 `json:"threshold"` // the level it crossed
	// Numbers are the named figures behind the decision, e.g. items 120,
	// negative 74, negative_ratio 0.62, baseline 310.
	Numbers map[string]float64 `json:"numbers,omitempty"`

	Summary string   `json:"summary"`
	Samples []Sample `json:"samples,omitempty"`
}

// Notifies reports whether the change is worth telling people about:
// pending changes are recorded but not sent.
func (e *Event) Notifies() bool { return e.State == Firing || e.State == Resolved }

// Sink receives the engine's events. The delivery side implements it by
// committing the event (and its outbox rows) before anything is sent.
type Sink interface {
	Publish(ctx context.Context, ev Event) error
}
