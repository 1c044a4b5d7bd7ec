package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"
)

// The shapes `--output json` prints, one JSON document per run. They are
// an interface scripts depend on: fields are added, never renamed or
// removed (README "Operate" shows each). Times are RFC 3339 in UTC; a
// value not known is omitted or null, never "-".

// ValidateOutput is `autodeploy validate --output json`.
type ValidateOutput struct {
	File  string         `json:"file"`
	Valid bool           `json:"valid"`
	Rules []ValidateRule `json:"rules"`
	// OwnersCheckedWith is the central place one owner per container was
	// checked against; null when it was checked without it.
	OwnersCheckedWith *Place `json:"owners_checked_with"`
}

// ValidateRule is one rule as the file gives it.
type ValidateRule struct {
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Selects    string `json:"selects"` // "tags main-*", "semver >= 1.0.0", "tag-regex …"
	Order      string `json:"order"`
	Pin        string `json:"pin"`
	// Registry is where the repository is; null: the central account and region.
	Registry   *Place           `json:"registry"`
	Targets    []ValidateTarget `json:"targets"`
	PromoteTag string           `json:"promote_tag,omitempty"`
	// PublishPrefix is the Parameter Store prefix the running image is published under.
	PublishPrefix string `json:"publish_prefix,omitempty"`
	// Gates says what a digest waits for, in validate's words ("" none).
	Gates   string           `json:"gates,omitempty"`
	Cleanup *ValidateCleanup `json:"cleanup,omitempty"`
}

// ValidateTarget is one target of a rule.
type ValidateTarget struct {
	Cluster    string   `json:"cluster"`
	Service    string   `json:"service"`
	Containers []string `json:"containers,omitempty"`
	Account    string   `json:"account,omitempty"`
	Region     string   `json:"region,omitempty"`
	// CodeDeploy is the deployment group of a blue/green target:
	// "APP/GROUP", or "found by the service" when not named.
	CodeDeploy string `json:"codedeploy,omitempty"`
}

// ValidateCleanup is a rule's cleanup: key.
type ValidateCleanup struct {
	Keep   int  `json:"keep"`
	Delete bool `json:"delete"`
}

// Place is an account and region.
type Place struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// HistoryOutput is `autodeploy history --output json`: newest first.
type HistoryOutput struct {
	Service string       `json:"service"` // the state key: account/region/cluster/service
	Rows    []HistoryRow `json:"rows"`
}

// HistoryRow is a deploy, rollback, hold or resume.
type HistoryRow struct {
	At   time.Time `json:"at"`
	Rule string    `json:"rule"` // "rollback", "hold", "resume" for those
	// Image is repository:tag (or @digest); omitted for holds.
	Image        string `json:"image,omitempty"`
	Outcome      string `json:"outcome"`              // deployed, skipped, failed, held, resumed…
	Deployment   string `json:"deployment,omitempty"` // how the ECS deployment ended: completed, failed, rolled back; left out: not known
	DeploymentID string `json:"deployment_id,omitempty"`
	From         string `json:"from,omitempty"` // task definition revision before (family:N)
	To           string `json:"to,omitempty"`   // and after
	Reason       string `json:"reason,omitempty"`
}

// StatusOutput is `autodeploy status --output json`.
type StatusOutput struct {
	Targets   []StatusTarget `json:"targets"`
	Approvals []OpenGate     `json:"waiting_for_approval"`
	Gates     []OpenGate     `json:"gates_under_way"`
	Cleanups  []StatusClean  `json:"cleanups"`
	// Error is the sweep's error, when it failed part-way (the targets
	// are those it read).
	Error string `json:"error,omitempty"`
}

// StatusTarget is one target of one rule.
type StatusTarget struct {
	Rule      string `json:"rule"`
	Account   string `json:"account"`
	Region    string `json:"region"`
	Cluster   string `json:"cluster"`
	Service   string `json:"service"`
	Rollout   string `json:"rollout,omitempty"` // left out when the sweep did not describe the service
	Running   string `json:"running,omitempty"` // tag and short digest, as far as known
	Newest    string `json:"newest,omitempty"`
	State     string `json:"state"` // in sync, behind, held by …, last deployment failed (…), …
	InSync    bool   `json:"in_sync"`
	Held      bool   `json:"held"`
	Published string `json:"published,omitempty"`
	// LastDeploy is the newest history record of the service; null: none.
	LastDeploy *LastDeploy `json:"last_deploy"`
}

// LastDeploy is what status shows of a service's newest deploy.
type LastDeploy struct {
	At         time.Time `json:"at"`
	Outcome    string    `json:"outcome"`
	Deployment string    `json:"deployment,omitempty"`
	Tag        string    `json:"tag,omitempty"`
}

// OpenGate is an approval, scan or bake that is open.
type OpenGate struct {
	Rule   string    `json:"rule"`
	Kind   string    `json:"kind"` // approval, scan, bake
	Tag    string    `json:"tag,omitempty"`
	Digest string    `json:"digest"`
	Due    time.Time `json:"due"` // an approval's expiry, a scan's wait, a bake's end
	// AskedAt is when an approval was asked; null when not read.
	AskedAt *time.Time `json:"asked_at,omitempty"`
	Command string     `json:"command,omitempty"` // the command that approves it
}

// StatusClean is what the next clean-up of a family would do.
type StatusClean struct {
	Family   string   `json:"family"`
	Account  string   `json:"account"`
	Region   string   `json:"region"`
	Services []string `json:"services"`
	Rules    []string `json:"rules"`
	Plan     string   `json:"plan"` // "keep 3, would deregister up to 3 (web-prod:4, 7, 9)"
}

// PlanOutput is `autodeploy plan --output json`.
type PlanOutput struct {
	// Push is the image planned: the event's, or the rule's under --tag.
	Push *PlanPush `json:"push"`
	// Ignored says why nothing is deployed, when nothing matched.
	Ignored string `json:"ignored,omitempty"`
	// StateChecked is false without a table: holds, failed digests and
	// gates were not read.
	StateChecked bool         `json:"state_checked"`
	Targets      []PlanTarget `json:"targets"`
	// NotMatched are the repository's rules that do not take the push,
	// with why (also when another rule does).
	NotMatched []RuleMiss `json:"not_matched"`
}

// PlanPush is the pushed image.
type PlanPush struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     string    `json:"digest"`
	At         time.Time `json:"at"`
	EventID    string    `json:"event_id,omitempty"`
	Account    string    `json:"account"`
	Region     string    `json:"region"`
}

// RuleMiss is a rule that does not take the push.
type RuleMiss struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// PlanTarget is what the push would do to one target of one rule.
type PlanTarget struct {
	Rule    string `json:"rule"`
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	Account string `json:"account"`
	Region  string `json:"region"`
	// Action is deploy, skip, wait (a gate), refused (a gate said no) or fail.
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
	// Gates is what the rule's gates said ("" no gates).
	Gates   string `json:"gates,omitempty"`
	Rollout string `json:"rollout,omitempty"`
	// Register is the revision a deploy would register; null otherwise.
	Register *PlanRegister `json:"register"`
	// CodeDeploy is the deployment group a blue/green deploy goes through.
	CodeDeploy string `json:"codedeploy,omitempty"`
	// Cleanup is what the next clean-up of the target's family would do.
	Cleanup string `json:"cleanup,omitempty"`
}

// PlanRegister is the new revision.
type PlanRegister struct {
	Family     string          `json:"family"`
	From       string          `json:"from"` // the running revision (family:N)
	Containers []PlanContainer `json:"containers"`
	LeftAlone  string          `json:"left_alone,omitempty"`
	Tags       []string        `json:"tags"` // autodeploy:… key=value, sorted
}

// PlanContainer is one container's image, before and after.
type PlanContainer struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// outputFlag adds --output to a command that reads.
func outputFlag(fs *flag.FlagSet) *string {
	return fs.String("output", "text", "text (tables for people) or json (one document for scripts; README \"Operate\" shows its shape)")
}

// checkOutput refuses a format no command prints, before any call.
func checkOutput(format string) (bool, error) {
	switch format {
	case "text":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usageError{fmt.Sprintf("--output %q: want text or json", format)}
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // ">= 1.0.0" as written, for people reading it too
	return enc.Encode(v)
}
