package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeAWS answers the calls of a deploy and of a sweep — the lock's
// UpdateItem, DescribeServices, DescribeTaskDefinition,
// RegisterTaskDefinition, UpdateService, the TransactWriteItems that records
// and unlocks, ECR's DescribeImages and the state table's BatchGetItem — at
// once and in memory. moto spends some milliseconds of CPU on every call,
// and on a small machine that CPU, not the network, bounds how fast many
// targets can go; real AWS is bound by latency and by its rate limits.
// Behind a Proxy that adds latency, FakeAWS shows what concurrency buys
// against such an AWS.
//
// It rate-limits ECS as ECS does, with a token bucket per operation and per
// place (the region of the request's signature): RegisterTaskDefinition and
// DeregisterTaskDefinition share one, UpdateService, DescribeServices and
// DescribeTaskDefinition have their own (see ECSRates). A call that finds its bucket empty is
// answered as ECS answers it — HTTP 400, `ThrottlingException`, "Rate
// exceeded" — so the SDK's retryer and our code see what they would see in
// AWS. DescribeServices refuses more than ten services, as ECS does.
//
// It keeps only what those calls need: services of any name exist, ACTIVE,
// on the ECS controller, each with one container "app" (Seed sets its
// image); DynamoDB holds nothing (every read finds no item) and accepts
// every write.
type FakeAWS struct {
	URL string

	mu       sync.Mutex
	current  map[string]string         // region/cluster/service → task definition ARN
	defs     map[string]map[string]any // task definition ARN → definition
	revision map[string]int            // region/family → last revision
	images   map[string][]map[string]any
	limits   ECSLimits
	buckets  map[string]*bucket // region/bucket name → bucket
	calls    map[string]int     // operation → calls answered (throttled ones too)
	refused  map[string]int     // operation → calls throttled
	// registered counts registrations per service and image.
	registered map[string]int
}

// Limit is a token bucket: Burst calls at once, refilled at PerSecond. The
// zero Limit does not limit.
type Limit struct {
	Burst     int
	PerSecond float64
}

// ECSLimits are the buckets FakeAWS applies in each place.
type ECSLimits struct {
	// Register is RegisterTaskDefinition's and DeregisterTaskDefinition's
	// shared bucket.
	Register Limit
	Update   Limit // UpdateService
	Describe Limit // DescribeServices
	// DescribeTaskDefinition, which a deploy makes once and a sweep once per
	// running task definition it has not described yet.
	DescribeTaskDef Limit
}

// ECSRates are ECS's documented buckets per account and region —
// RegisterTaskDefinition and DeregisterTaskDefinition 20 burst, 1/s;
// UpdateService 50, 5/s; DescribeServices 100, 20/s; DescribeTaskDefinition
// 50, 20/s — with the sustained
// rates multiplied by scale, so a benchmark can play minutes of ECS in
// seconds: at scale 50, one second of ECS is 20 ms. Bursts stay as they are.
func ECSRates(scale float64) ECSLimits {
	return ECSLimits{
		Register: Limit{Burst: 20, PerSecond: 1 * scale},
		Update:   Limit{Burst: 50, PerSecond: 5 * scale},
		Describe: Limit{Burst: 100, PerSecond: 20 * scale},

		DescribeTaskDef: Limit{Burst: 50, PerSecond: 20 * scale},
	}
}

// Floor is the least time n calls take through l's bucket, starting full.
func (l Limit) Floor(n int) time.Duration {
	if l.PerSecond <= 0 || n <= l.Burst {
		return 0
	}
	return time.Duration(float64(n-l.Burst) / l.PerSecond * float64(time.Second))
}

type bucket struct {
	limit  Limit
	tokens float64
	last   time.Time
}

// take spends a token, or says the call is throttled.
func (b *bucket) take(now time.Time) bool {
	if b.limit.PerSecond <= 0 && b.limit.Burst <= 0 {
		return true
	}
	b.tokens = min(float64(b.limit.Burst), b.tokens+now.Sub(b.last).Seconds()*b.limit.PerSecond)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// StartFakeAWS serves until the test ends, with ECS's buckets at their real
// rates (ECSRates(1)).
func StartFakeAWS(t testing.TB) *FakeAWS {
	t.Helper()
	f := &FakeAWS{current: map[string]string{}, defs: map[string]map[string]any{}, revision: map[string]int{},
		images: map[string][]map[string]any{}, calls: map[string]int{}, refused: map[string]int{}, registered: map[string]int{}}
	f.Limits(ECSRates(1))
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Limits sets the buckets of every place, full.
func (f *FakeAWS) Limits(l ECSLimits) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limits, f.buckets = l, map[string]*bucket{}
}

// RegisterRate sets RegisterTaskDefinition's burst and sustained rate and
// leaves the other buckets unlimited.
func (f *FakeAWS) RegisterRate(burst int, perSecond float64) {
	f.Limits(ECSLimits{Register: Limit{Burst: burst, PerSecond: perSecond}})
}

// Throttled is how many RegisterTaskDefinition calls were refused so far.
func (f *FakeAWS) Throttled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused["RegisterTaskDefinition"]
}

// Refused is how many calls of each operation were throttled so far.
func (f *FakeAWS) Refused() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.refused)
}

// Calls is how many calls of each operation FakeAWS answered so far,
// throttled ones included.
func (f *FakeAWS) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// Registrations is how many task definitions were registered, and how many
// of those registered again an image a service had already been given
// (each one a target deployed twice).
func (f *FakeAWS) Registrations() (total, duplicates int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.registered {
		total += n
		duplicates += n - 1
	}
	return total, duplicates
}

// Running is the task definition a service of the default region runs.
func (f *FakeAWS) Running(cluster, service string) string {
	return f.RunningIn(Region, cluster, service)
}

// RunningIn is the task definition a service of region runs.
func (f *FakeAWS) RunningIn(region, cluster, service string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.currentLocked(region, cluster, service)
}

// Image is the image a service's container "app" runs.
func (f *FakeAWS) Image(region, cluster, service string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	def := f.defs[f.currentLocked(region, cluster, service)]
	c, _ := def["containerDefinitions"].([]any)[0].(map[string]any)
	image, _ := c["image"].(string)
	return image
}

// Seed makes a service of region run image in its container "app".
func (f *FakeAWS) Seed(region, cluster, service, image string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current[region+"/"+cluster+"/"+service] = f.registerLocked(region, map[string]any{"family": service,
		"containerDefinitions": []any{map[string]any{"name": "app", "image": image, "essential": true}}})
}

// PushImage lists a tagged image in repository (any registry, any region)
// for DescribeImages.
func (f *FakeAWS) PushImage(repository, tag, digest string, pushedAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[repository] = append(f.images[repository], map[string]any{
		"registryId": Account, "repositoryName": repository, "imageDigest": digest, "imageTags": []string{tag},
		"imagePushedAt":          float64(pushedAt.UnixMilli()) / 1000,
		"imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
	})
}

func (f *FakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &in)
	op := operation(r.Header.Get("X-Amz-Target"))
	f.mu.Lock()
	out, status := f.answer(signedRegion(r.Header.Get("Authorization")), op, in)
	f.mu.Unlock()
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	} else {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

// signedRegion is the region of a SigV4 signature's credential scope
// (Credential=AKID/date/region/service/aws4_request), else the default.
func signedRegion(authorization string) string {
	_, scope, ok := strings.Cut(authorization, "Credential=")
	if !ok {
		return Region
	}
	if parts := strings.Split(scope, "/"); len(parts) > 2 && parts[2] != "" {
		return parts[2]
	}
	return Region
}

func arnPrefix(region string) string { return "arn:aws:ecs:" + region + ":" + Account + ":" }

func (f *FakeAWS) currentLocked(region, cluster, service string) string {
	key := region + "/" + cluster + "/" + service
	if arn, ok := f.current[key]; ok {
		return arn
	}
	arn := f.registerLocked(region, map[string]any{"family": service,
		"containerDefinitions": []any{map[string]any{"name": "app", "image": "fake/" + service + ":v0", "essential": true}}})
	f.current[key] = arn
	return arn
}

func (f *FakeAWS) registerLocked(region string, def map[string]any) string {
	family, _ := def["family"].(string)
	f.revision[region+"/"+family]++
	rev := f.revision[region+"/"+family]
	arn := fmt.Sprintf("%stask-definition/%s:%d", arnPrefix(region), family, rev)
	stored := map[string]any{}
	for k, v := range def {
		if k != "tags" {
			stored[k] = v
		}
	}
	stored["taskDefinitionArn"], stored["revision"], stored["status"] = arn, rev, "ACTIVE"
	f.defs[arn] = stored
	return arn
}

func (f *FakeAWS) service(region, cluster, name string) map[string]any {
	td := f.currentLocked(region, cluster, name)
	return map[string]any{
		"serviceName": name, "serviceArn": arnPrefix(region) + "service/" + cluster + "/" + name,
		"clusterArn": arnPrefix(region) + "cluster/" + cluster, "status": "ACTIVE", "desiredCount": 2,
		"taskDefinition": td, "deploymentController": map[string]any{"type": "ECS"},
		"deployments": []any{map[string]any{"id": "ecs-svc/" + fmt.Sprint(len(f.defs)), "status": "PRIMARY", "taskDefinition": td}},
	}
}

// bucketOf is the bucket op spends in region, if any.
func (f *FakeAWS) bucketOf(region, op string) *bucket {
	var name string
	var l Limit
	switch op {
	case "RegisterTaskDefinition", "DeregisterTaskDefinition":
		name, l = "register", f.limits.Register
	case "UpdateService":
		name, l = "update", f.limits.Update
	case "DescribeServices":
		name, l = "describe", f.limits.Describe
	case "DescribeTaskDefinition":
		name, l = "describe-task-definition", f.limits.DescribeTaskDef
	default:
		return nil
	}
	key := region + "/" + name
	b, ok := f.buckets[key]
	if !ok {
		b = &bucket{limit: l, tokens: float64(l.Burst), last: time.Now()}
		f.buckets[key] = b
	}
	return b
}

func (f *FakeAWS) answer(region, op string, in map[string]any) (any, int) {
	str := func(k string) string { s, _ := in[k].(string); return s }
	f.calls[op]++
	if b := f.bucketOf(region, op); b != nil && !b.take(time.Now()) {
		f.refused[op]++
		return map[string]any{"__type": "ThrottlingException", "message": "Rate exceeded"}, http.StatusBadRequest
	}
	switch op {
	case "UpdateItem", "TransactWriteItems", "PutItem", "DeleteItem", "GetItem", "Query":
		return map[string]any{}, http.StatusOK
	case "BatchGetItem":
		req, _ := in["RequestItems"].(map[string]any)
		responses, keys := map[string]any{}, 0
		for table, v := range req {
			responses[table] = []any{}
			ka, _ := v.(map[string]any)
			list, _ := ka["Keys"].([]any)
			keys += len(list)
		}
		if keys > 100 {
			return map[string]any{"__type": "com.amazonaws.dynamodb.v20120810#ValidationException",
				"message": "Too many items requested for the BatchGetItem call"}, http.StatusBadRequest
		}
		return map[string]any{"Responses": responses, "UnprocessedKeys": map[string]any{}}, http.StatusOK
	case "DescribeImages":
		return map[string]any{"imageDetails": f.images[str("repositoryName")]}, http.StatusOK
	case "DescribeServices":
		names, _ := in["services"].([]any)
		if len(names) > 10 {
			return map[string]any{"__type": "InvalidParameterException", "message": "services can have at most 10 items."}, http.StatusBadRequest
		}
		var services []any
		for _, n := range names {
			services = append(services, f.service(region, str("cluster"), n.(string)))
		}
		return map[string]any{"services": services, "failures": []any{}}, http.StatusOK
	case "DescribeTaskDefinition":
		def, ok := f.defs[str("taskDefinition")]
		if !ok {
			return map[string]any{"__type": "ClientException", "message": "Unable to describe task definition."}, http.StatusBadRequest
		}
		return map[string]any{"taskDefinition": def, "tags": []any{}}, http.StatusOK
	case "RegisterTaskDefinition":
		arn := f.registerLocked(region, in)
		containers, _ := in["containerDefinitions"].([]any)
		var images []string
		for _, c := range containers {
			m, _ := c.(map[string]any)
			image, _ := m["image"].(string)
			images = append(images, image)
		}
		f.registered[region+"/"+str("family")+"/"+strings.Join(images, ",")]++
		return map[string]any{"taskDefinition": f.defs[arn], "tags": in["tags"]}, http.StatusOK
	case "ListTaskDefinitions":
		// The family's revisions as ECS lists them for familyPrefix (the
		// exact family here), newest first with sort DESC; one page.
		family := str("familyPrefix")
		var arns []any
		for n := f.revision[region+"/"+family]; n >= 1; n-- {
			arns = append(arns, fmt.Sprintf("%stask-definition/%s:%d", arnPrefix(region), family, n))
		}
		if str("sort") != "DESC" {
			slices.Reverse(arns)
		}
		return map[string]any{"taskDefinitionArns": arns}, http.StatusOK
	case "UpdateService":
		cluster, name := str("cluster"), str("service")
		f.current[region+"/"+cluster+"/"+name] = str("taskDefinition")
		return map[string]any{"service": f.service(region, cluster, name)}, http.StatusOK
	}
	return map[string]any{"__type": "UnknownOperationException", "message": "FakeAWS does not answer " + op}, http.StatusBadRequest
}
