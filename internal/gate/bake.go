package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Bake is one digest's bake before a rule promotes it: it completed on
// every target at StartedAt and is promoted at Due unless one of Alarms
// entered ALARM meanwhile.
type Bake struct {
	Rule      string    `dynamodbav:"rule"`
	Digest    string    `dynamodbav:"digest"`
	Tag       string    `dynamodbav:"tag,omitempty"`
	State     State     `dynamodbav:"state"`
	PushedAt  time.Time `dynamodbav:"pushed_at,omitempty"`
	StartedAt time.Time `dynamodbav:"started_at"`
	Due       time.Time `dynamodbav:"due"`
	// Alarms are the alarms watched, as the rule names them.
	Alarms []string `dynamodbav:"alarms"`
	// Alarm and AlarmAt: the alarm that stopped it (NotPromoted) and when
	// it entered ALARM.
	Alarm   string    `dynamodbav:"alarm,omitempty"`
	AlarmAt time.Time `dynamodbav:"alarm_at,omitempty"`
	EndedAt time.Time `dynamodbav:"ended_at,omitempty"`
}

// BakeRequest is a digest that completed on every target of a rule with
// promote.bake.
type BakeRequest struct {
	Rule, Digest, Tag string
	PushedAt          time.Time
	At                time.Time     // when the last target completed
	Bake              time.Duration // the rule's promote.bake
	Alarms            []string      // the rule's promote.alarms (rules.Alarm.String)
}

// StartBake starts a digest's bake for a rule; a bake that exists (the
// last completion delivered twice) is returned as it is, created false.
func (s *Store) StartBake(ctx context.Context, req BakeRequest) (Bake, bool, error) {
	if len(req.Alarms) == 0 {
		return Bake{}, false, fmt.Errorf("start bake of %s for %s: no alarms to watch", req.Digest, req.Rule)
	}
	b := Bake{Rule: req.Rule, Digest: req.Digest, Tag: req.Tag, State: Baking, PushedAt: req.PushedAt.UTC(),
		StartedAt: req.At.UTC(), Due: req.At.Add(req.Bake).UTC(), Alarms: req.Alarms}
	item, err := attributevalue.MarshalMap(b)
	if err != nil {
		return Bake{}, false, fmt.Errorf("marshal bake: %w", err)
	}
	item["started_ms"] = millis(b.StartedAt)
	got, created, err := s.start(ctx, KindBake, req.Rule, req.Digest, item, OpenGate{Tag: b.Tag, PushedAt: b.PushedAt, Due: b.Due})
	if err != nil {
		return Bake{}, false, err
	}
	b, err = bakeOf(got)
	return b, created, err
}

// AlarmFired ends a bake as not promoted: alarm, one of its alarms,
// entered ALARM at at, within the bake (from its start to its due time).
// applied is false, and nothing changes, for an alarm it does not watch,
// a state change outside the bake (an event delayed from before it, or
// after its end), or a bake already ended (a second delivery, another
// alarm first).
func (s *Store) AlarmFired(ctx context.Context, rule, digest, alarm string, at time.Time) (Bake, bool, error) {
	return s.endBake(ctx, rule, digest, change{
		set:  "#state = :not, #alarm = :alarm, alarm_at = :at, ended_at = :at, expires_at = :exp",
		cond: "#state = :baking AND contains(#alarms, :alarm) AND started_ms <= :now AND due_ms >= :now",
		values: map[string]types.AttributeValue{":not": str(string(NotPromoted)), ":alarm": str(alarm), ":at": timeValue(at.UTC()),
			":exp": epoch(at.Add(Retention)), ":baking": str(string(Baking)), ":now": millis(at)},
		final: true,
	})
}

// Firing is an alarm found in ALARM when a bake ends, and since when.
type Firing struct {
	Alarm string
	Since time.Time
}

// EndBake ends a bake whose time is up at at (its timer fired, or a sweep
// found it due), by the alarms' state read then: promoted when firing is
// nil, else not promoted with that alarm and its time. false, and nothing
// changes, when the bake ended already or is not due.
func (s *Store) EndBake(ctx context.Context, rule, digest string, at time.Time, firing *Firing) (Bake, bool, error) {
	c := change{
		set:  "#state = :promoted, ended_at = :at, expires_at = :exp",
		cond: "#state = :baking AND due_ms <= :now",
		values: map[string]types.AttributeValue{":promoted": str(string(Promoted)), ":at": timeValue(at.UTC()),
			":exp": epoch(at.Add(Retention)), ":baking": str(string(Baking)), ":now": millis(at)},
		final: true,
	}
	if firing != nil {
		c.set = "#state = :not, #alarm = :alarm, alarm_at = :since, ended_at = :at, expires_at = :exp"
		c.values[":not"], c.values[":alarm"], c.values[":since"] = str(string(NotPromoted)), str(firing.Alarm), timeValue(firing.Since.UTC())
	}
	return s.endBake(ctx, rule, digest, c)
}

func (s *Store) endBake(ctx context.Context, rule, digest string, c change) (Bake, bool, error) {
	got, applied, err := s.apply(ctx, KindBake, rule, digest, c)
	if err != nil || got == nil {
		return Bake{}, false, err
	}
	b, err := bakeOf(got)
	return b, applied, err
}

// GetBake reads the bake of a digest for a rule.
func (s *Store) GetBake(ctx context.Context, rule, digest string) (Bake, bool, error) {
	got, err := s.get(ctx, KindBake, rule, digest)
	if err != nil || got == nil {
		return Bake{}, false, err
	}
	b, err := bakeOf(got)
	return b, err == nil, err
}

func bakeOf(item map[string]types.AttributeValue) (Bake, error) {
	var b Bake
	if err := attributevalue.UnmarshalMap(item, &b); err != nil {
		return Bake{}, fmt.Errorf("read bake: %w", err)
	}
	return b, nil
}
