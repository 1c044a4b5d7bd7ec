package notify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// What a notice reports.
const (
	Completed    = "completed"     // a deployment finished and runs the image
	Failed       = "failed"        // ECS or CodeDeploy said the deployment failed
	RolledBack   = "rolled_back"   // the deployment was rolled back
	NotDeployed  = "not_deployed"  // the deployer gave up on a target (permanent failure)
	NotPromoted  = "not_promoted"  // a digest that completed everywhere cannot be promoted
	NotPublished = "not_published" // deployed, but the running image could not be written to Parameter Store
)

// Notice is one thing that happened to one service, rendered for chat
// (AWS Chatbot's custom format) and for e-mail.
type Notice struct {
	Outcome                 string
	Account, Region         string
	Cluster, Service        string
	Rule                    string
	Repository, Tag, Digest string
	TaskDefinition          string
	DeploymentID            string
	EventID                 string
	Reason                  string
	PushedAt, EndedAt       time.Time
	PromotedTag             string // for NotPromoted: the tag it would have set
	ServiceARN              string // optional, a related resource in chat
	// Summary is set on a RolloutEnded notice: how a push to a rule's
	// targets ended on all of them.
	Summary *Summary
	// Pause is set on a Paused notice: the hook that waits for a person.
	Pause *Pause
	// Gate is set on a gate's notice: an approval, a scan or a bake.
	Gate *Gate
}

// Title is the notice in one line, without decoration: it is the e-mail's
// subject and the chat message's summary.
func (n Notice) Title() string {
	if n.Summary != nil {
		return n.Summary.title(n)
	}
	if n.Pause != nil {
		return n.Pause.title(n)
	}
	if n.Gate != nil {
		return n.Gate.title(n)
	}
	image := n.Repository + ":" + n.Tag
	switch n.Outcome {
	case Completed:
		return fmt.Sprintf("%s is running %s", n.service(), image)
	case Failed:
		return fmt.Sprintf("%s deployment of %s FAILED", n.service(), image)
	case RolledBack:
		return fmt.Sprintf("%s was ROLLED BACK from %s", n.service(), image)
	case NotDeployed:
		return fmt.Sprintf("%s NOT deployed %s", n.service(), image)
	case NotPromoted:
		return fmt.Sprintf("%s NOT promoted by rule %s", image, n.Rule)
	case NotPublished:
		return fmt.Sprintf("%s runs %s, NOT published to Parameter Store", n.service(), image)
	}
	return fmt.Sprintf("%s %s %s", n.service(), n.Outcome, image)
}

func (n Notice) service() string { return n.Cluster + "/" + n.Service }

// icon marks the outcome in chat, where a glance should tell good from bad.
func (n Notice) icon() string {
	if n.Summary != nil {
		return n.Summary.icon()
	}
	switch n.Outcome {
	case Paused, AwaitingApproval:
		return "⏸️"
	case ScanBlocked:
		return "🛑"
	case Completed:
		return "✅"
	case RolledBack:
		return "↩️"
	case Failed, NotDeployed, NotPublished:
		return "❌"
	}
	return "⚠️"
}

type fact struct{ name, value string }

// facts are the notice's details in reading order; empty ones are left out.
func (n Notice) facts() []fact {
	if n.Summary != nil {
		return n.Summary.facts(n)
	}
	fs := []fact{
		{"Service", n.service()},
		{"Account", strings.Trim(n.Account+" "+n.Region, " ")},
		{"Image", n.Repository + ":" + n.Tag},
		{"Digest", n.Digest},
		{"Outcome", strings.ReplaceAll(n.Outcome, "_", " ")},
		{"Rule", n.Rule},
		{"Promoted tag", n.PromotedTag},
		{"Task definition", n.TaskDefinition},
		{"Deployment", n.DeploymentID},
		{"Event", n.EventID},
		{"Reason", n.Reason},
	}
	if n.Pause != nil {
		fs = n.Pause.facts(n)
	}
	if n.Gate != nil {
		fs = n.Gate.facts(n)
	}
	if n.Pause == nil && n.Gate == nil && !n.PushedAt.IsZero() && !n.EndedAt.IsZero() {
		fs = append(fs, fact{"Push to end", fmt.Sprintf("%s (pushed %s, ended %s)", n.EndedAt.Sub(n.PushedAt).Round(time.Second),
			n.PushedAt.UTC().Format(time.RFC3339), n.EndedAt.UTC().Format(time.RFC3339))})
	}
	out := fs[:0]
	for _, f := range fs {
		if f.value != "" && f.value != "/" && f.value != ":" {
			out = append(out, f)
		}
	}
	return out
}

// serviceFlags name the notice's service for the CLI: cluster and service,
// and its account and region when known — the CLI's defaults are the
// caller's account and the SDK's region, and the same cluster and service
// names in another region would be another service.
func (n Notice) serviceFlags() string {
	flags := fmt.Sprintf("--cluster %s --service %s", n.Cluster, n.Service)
	if n.Account != "" {
		flags += " --account " + n.Account
	}
	if n.Region != "" {
		flags += " --region " + n.Region
	}
	return flags
}

// NextSteps say what a person may do now, with the command to run.
func (n Notice) NextSteps() []string {
	if n.Summary != nil {
		return n.Summary.nextSteps()
	}
	if n.Pause != nil {
		return n.Pause.nextSteps(n)
	}
	if n.Gate != nil {
		return n.Gate.nextSteps(n)
	}
	flags := n.serviceFlags()
	history := "See what ran before: `autodeploy history " + flags + "`"
	switch n.Outcome {
	case Completed:
		return []string{"Nothing to do. To undo it: `autodeploy rollback " + flags + "`"}
	case Failed, RolledBack:
		return []string{
			"This digest is not deployed to this service again; a newer push is. Fix the image and push it.",
			history,
			"Read the service's events: `aws ecs describe-services --cluster " + n.Cluster + " --services " + n.Service + "`",
		}
	case NotDeployed:
		return []string{
			"This event is not retried: fix the cause above (rules file, service or IAM), then push again.",
			"Check what a push would do: `autodeploy plan --event EVENT.json`",
			history,
		}
	case NotPromoted:
		return []string{"Fix the rule's promote template in autodeploy.yaml (`autodeploy validate`), or tag the digest by hand."}
	case NotPublished:
		return []string{
			"Until the parameter holds this image, a deploy of your infrastructure code would put the old one back.",
			"Fix the cause above (the deployer's ssm:PutParameter permission, the parameter's versions); the next sweep writes it.",
			"Check it: `autodeploy status`",
		}
	}
	return []string{history}
}

// threadID keeps every notice about one service in one chat thread.
func (n Notice) threadID() string {
	if n.Gate != nil && n.Gate.Kind != "bake" {
		return "ecr-autodeploy/gate/" + n.Rule + "/" + n.Digest
	}
	switch n.Outcome {
	case NotPromoted:
		return "ecr-autodeploy/promote/" + n.Rule + "/" + n.Repository
	case RolloutEnded:
		return "ecr-autodeploy/rollout/" + n.Rule
	}
	parts := []string{"ecr-autodeploy"}
	for _, p := range []string{n.Account, n.Region, n.Cluster, n.Service} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, "/")
}

// chatbotMessage is AWS Chatbot's custom notification; Chatbot drops
// anything else published to the topics it reads.
type chatbotMessage struct {
	Version  string          `json:"version"`
	Source   string          `json:"source"`
	ID       string          `json:"id,omitempty"`
	Content  chatbotContent  `json:"content"`
	Metadata chatbotMetadata `json:"metadata"`
}

type chatbotContent struct {
	TextType    string   `json:"textType"`
	Title       string   `json:"title"`
	Description string   `json:"description"`
	NextSteps   []string `json:"nextSteps,omitempty"`
	Keywords    []string `json:"keywords,omitempty"`
}

type chatbotMetadata struct {
	ThreadID          string            `json:"threadId"`
	Summary           string            `json:"summary"`
	EventType         string            `json:"eventType"`
	RelatedResources  []string          `json:"relatedResources,omitempty"`
	AdditionalContext map[string]string `json:"additionalContext,omitempty"`
}

// Chatbot renders the notice in AWS Chatbot's custom format.
func (n Notice) Chatbot() ([]byte, error) {
	var desc strings.Builder
	for _, f := range n.facts() {
		fmt.Fprintf(&desc, "%s: `%s`\n", f.name, strings.ReplaceAll(f.value, "`", "'"))
	}
	ctx := map[string]string{}
	for k, v := range map[string]string{"rule": n.Rule, "repository": n.Repository, "tag": n.Tag, "digest": n.Digest,
		"cluster": n.Cluster, "service": n.Service, "deploymentId": n.DeploymentID, "eventId": n.EventID, "outcome": n.Outcome} {
		if v != "" {
			ctx[k] = v
		}
	}
	var related []string
	for _, r := range []string{n.ServiceARN, n.TaskDefinition} {
		if strings.HasPrefix(r, "arn:") {
			related = append(related, r)
		}
	}
	keywords := []string{strings.ReplaceAll(n.Outcome, "_", "-")}
	if n.Rule != "" {
		keywords = append(keywords, n.Rule)
	}
	id := n.DeploymentID
	if id == "" {
		id = n.EventID
	}
	if n.Summary != nil {
		id = n.EventID + "/" + n.Rule
	}
	if n.Pause != nil {
		id = n.Pause.HookID
	}
	if n.Gate != nil {
		id = n.Gate.Kind + "/" + n.Rule + "/" + n.Digest + "/" + n.Outcome
	}
	b, err := json.MarshalIndent(chatbotMessage{
		Version: "1.0",
		Source:  "custom",
		ID:      id,
		Content: chatbotContent{
			TextType:    "client-markdown",
			Title:       n.icon() + " " + n.Title(),
			Description: strings.TrimSuffix(desc.String(), "\n"),
			NextSteps:   n.NextSteps(),
			Keywords:    keywords,
		},
		Metadata: chatbotMetadata{
			ThreadID:          n.threadID(),
			Summary:           n.Title(),
			EventType:         "ecr-autodeploy-" + strings.ReplaceAll(n.Outcome, "_", "-"),
			RelatedResources:  related,
			AdditionalContext: ctx,
		},
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("render chat notice: %w", err)
	}
	return b, nil
}

// Email renders the notice as plain text for people who read mail.
func (n Notice) Email() string {
	var b strings.Builder
	b.WriteString(n.Title() + "\n\n")
	width := 0
	fs := n.facts()
	for _, f := range fs {
		width = max(width, len(f.name))
	}
	for _, f := range fs {
		fmt.Fprintf(&b, "%-*s  %s\n", width+1, f.name+":", f.value)
	}
	b.WriteString("\nNext steps:\n")
	for _, s := range n.NextSteps() {
		b.WriteString("  - " + strings.ReplaceAll(s, "`", "") + "\n")
	}
	b.WriteString("\n-- \necr-autodeploy\n")
	return b.String()
}
