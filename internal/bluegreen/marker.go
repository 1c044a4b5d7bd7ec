package bluegreen

import "strings"

// Mark is what a deploy writes into its deployment's description: the
// event, rule and image digest, as the deployer's task definition tags name
// them. A later deploy reads it back to tell its own deployment (a retry of
// the same event) and one of the same image (another event's) from others.
type Mark struct {
	Event, Rule string
	// Digest is "" in descriptions written before it was added, and in the
	// CLI's rollbacks.
	Digest string
}

const markPrefix = "ecr-autodeploy"

func (m Mark) String() string {
	parts := []string{markPrefix, "event=" + m.Event, "rule=" + m.Rule}
	if m.Digest != "" {
		parts = append(parts, "digest="+m.Digest)
	}
	return strings.Join(parts, " ")
}

// ParseMark reads a deployment's description; ok is false for one no
// deployer wrote (a deployment started by hand or by another tool).
// Event ids, rule names and digests hold no spaces, so fields split on them.
func ParseMark(description string) (m Mark, ok bool) {
	fields := strings.Fields(description)
	if len(fields) < 3 || fields[0] != markPrefix {
		return Mark{}, false
	}
	for _, f := range fields[1:] {
		k, v, found := strings.Cut(f, "=")
		if !found {
			return Mark{}, false
		}
		switch k {
		case "event":
			m.Event = v
		case "rule":
			m.Rule = v
		case "digest":
			m.Digest = v
		}
	}
	return m, m.Event != "" && m.Rule != ""
}

// Marker is the description of a deployment without a digest: the CLI's
// rollbacks, which name the event and rule only.
func Marker(eventID, rule string) string {
	return Mark{Event: eventID, Rule: rule}.String()
}
