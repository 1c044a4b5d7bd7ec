package bluegreen

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
)

// Ending is what GetDeployment says about a deployment that ended.
type Ending struct {
	RolledBack bool   // CodeDeploy started a rollback deployment for it
	Reason     string // CodeDeploy's error and rollback messages
}

// Ended reads how deployment id ended: whether it was rolled back (a
// rollback is a deployment of its own, named in rollbackInfo) and why.
func Ended(ctx context.Context, client CodeDeploy, id string) (Ending, error) {
	out, err := client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		return Ending{}, fmt.Errorf("get deployment %s: %w", id, err)
	}
	info := out.DeploymentInfo
	if info == nil {
		return Ending{}, nil
	}
	var e Ending
	var why []string
	if ei := info.ErrorInformation; ei != nil && aws.ToString(ei.Message) != "" {
		why = append(why, string(ei.Code)+": "+aws.ToString(ei.Message))
	}
	if rb := info.RollbackInfo; rb != nil && aws.ToString(rb.RollbackDeploymentId) != "" {
		e.RolledBack = true
		msg := "rolled back by deployment " + aws.ToString(rb.RollbackDeploymentId)
		if m := aws.ToString(rb.RollbackMessage); m != "" {
			msg += " (" + m + ")"
		}
		why = append(why, msg)
	}
	e.Reason = strings.TrimPrefix(strings.Join(why, "; "), ": ")
	return e, nil
}
