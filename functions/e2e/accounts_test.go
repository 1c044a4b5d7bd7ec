// Package e2e runs both built functions, under aws-lambda-rie, across
// accounts and regions of one moto server: moto is multi-account through
// sts:AssumeRole, so the roles the stacks would make in the registry and
// target accounts are stood in for by moto's.
package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const (
	registryAccount = "333333333333" // shared registry, in the central region
	targetAccount   = "222222222222" // prod, in another region
	targetRegion    = "us-east-1"
	registryHost    = registryAccount + ".dkr.ecr." + testenv.Region + ".amazonaws.com"
)

const rulesYAML = `version: 1
defaults:
  registry: {account: "` + registryAccount + `"}
rules:
  - name: web-prod
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: prod, service: web, account: "` + targetAccount + `", region: ` + targetRegion + `}
    promote: {tag: "verified-{tag}"}
`

// TestRegistryAndTargetInOtherAccounts: a push in the registry account
// rolls a service in a target account and region; the watcher gets that
// account's deployment event and promotes in the registry account; a sweep
// lists the registry's images and catches up a push whose event was lost.
func TestRegistryAndTargetInOtherAccounts(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMoto(t)
	// Act in the other accounts as the functions do: through the roles the
	// registry and target stacks would make (moto gives any role's account).
	clients := awsenv.NewClients(m.AWSConfig())
	registry := clients.ECR(testenv.Region, "arn:aws:iam::"+registryAccount+":role/"+rules.RegistryRoleName(testenv.Region))
	if _, err := registry.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	digest, err := emulator.PushImage(ctx, registry, "web", "main-1")
	if err != nil {
		t.Fatal(err)
	}
	targetECS := clients.ECS(targetRegion, "arn:aws:iam::"+targetAccount+":role/"+rules.TargetRoleName(targetRegion))
	if _, err := emulator.SeedService(ctx, targetECS, emulator.Service{Cluster: "prod", Name: "web", Family: "web-prod",
		Containers: []emulator.Container{{Name: "app", Image: registryHost + "/web:main-0"}}}); err != nil {
		t.Fatal(err)
	}
	table := m.CreateTable(t, "autodeploy")
	rulesFile := filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	// No AUTODEPLOY_ACCOUNT: the functions ask STS, as a bare install does.
	env := append(m.Env(), "AUTODEPLOY_TABLE="+table)
	deployer := testenv.StartFunction(t, "deployer", rulesFile, env)
	watcher := testenv.StartFunction(t, "watcher", rulesFile, env)

	// The push, as the registry stack's rule forwards it: the event keeps
	// the registry's account.
	var push map[string]any
	if err := json.Unmarshal(testenv.Event(t, "ecr-push-main.json"), &push); err != nil {
		t.Fatal(err)
	}
	push["account"] = registryAccount
	detail := push["detail"].(map[string]any)
	detail["repository-name"], detail["image-tag"], detail["image-digest"] = "web", "main-1", digest
	body := invoke(t, deployer, push)
	var sum struct {
		Results []struct {
			Outcome, Account, Region string
			DeploymentID             string `json:"deployment_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &sum); err != nil || len(sum.Results) != 1 || sum.Results[0].Outcome != "deployed" ||
		sum.Results[0].Account != targetAccount || sum.Results[0].Region != targetRegion {
		t.Fatalf("deployer answered %s", body)
	}
	if got := running(t, targetECS); got != registryHost+"/web@"+digest {
		t.Errorf("the target account's service runs %s", got)
	}

	// The same repository pushed in the central account is another
	// registry: the rule does not match it.
	push["account"] = testenv.Account
	if body := invoke(t, deployer, push); !strings.Contains(string(body), "its registry is "+registryAccount+"/"+testenv.Region) {
		t.Errorf("a push to the central registry: %s", body)
	}

	// ECS's event, forwarded from the target account by its stack's rule.
	var ev map[string]any
	if err := json.Unmarshal(testenv.Event(t, "ecs-deployment-completed.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["account"], ev["region"] = targetAccount, targetRegion
	ev["resources"] = []string{"arn:aws:ecs:" + targetRegion + ":" + targetAccount + ":service/prod/web"}
	ev["detail"].(map[string]any)["deploymentId"] = sum.Results[0].DeploymentID
	if body := invoke(t, watcher, ev); !strings.Contains(string(body), `"outcome":"completed"`) || !strings.Contains(string(body), `"promoted":"verified-main-1"`) {
		t.Fatalf("watcher answered %s", body)
	}
	if tags := tagsOf(t, registry, digest); !slices.Contains(tags, "verified-main-1") {
		t.Errorf("the registry account's image has tags %v, want verified-main-1", tags)
	}
	store := history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	rec, found, err := store.ByDeployment(ctx, sum.Results[0].DeploymentID)
	if err != nil || !found || rec.Account != targetAccount || rec.RegistryAccount != registryAccount || rec.DeploymentOutcome != history.Completed {
		t.Errorf("history: %+v %v %v", rec, found, err)
	}

	// main-2's event never arrives; the sweep lists the registry account's
	// images and rolls the target account's service.
	next, err := emulator.PushImage(ctx, registry, "web", "main-2")
	if err != nil {
		t.Fatal(err)
	}
	var sched map[string]any
	if err := json.Unmarshal(testenv.Event(t, "scheduled-reconcile.json"), &sched); err != nil {
		t.Fatal(err)
	}
	if body := invoke(t, deployer, sched); !strings.Contains(string(body), `"outcome":"deployed"`) {
		t.Fatalf("sweep answered %s", body)
	}
	if got := running(t, targetECS); got != registryHost+"/web@"+next {
		t.Errorf("after the sweep the target account's service runs %s", got)
	}
}

func invoke(t *testing.T, fn *emulator.RIE, event map[string]any) []byte {
	t.Helper()
	data, err := json.Marshal(event)
	if err != nil {
		t.Fatal(err)
	}
	body, err := fn.Invoke(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func running(t *testing.T, client *ecs.Client) string {
	t.Helper()
	ctx := context.Background()
	svc, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)
}

func tagsOf(t *testing.T, client *ecr.Client, digest string) []string {
	t.Helper()
	out, err := client.DescribeImages(context.Background(), &ecr.DescribeImagesInput{RepositoryName: aws.String("web"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.ImageDetails[0].ImageTags
}
