package testenv

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// FakeAWS answers the six calls of one deploy — the lock's UpdateItem,
// DescribeServices, DescribeTaskDefinition, RegisterTaskDefinition,
// UpdateService and the TransactWriteItems that records and unlocks — at
// once and in memory. moto spends some milliseconds of CPU on every call,
// and on a small machine that CPU, not the network, bounds how fast many
// targets can go; real AWS is bound by latency. Behind a Proxy that adds
// latency, FakeAWS shows what concurrency buys against such an AWS. It
// also throttles RegisterTaskDefinition as ECS does (a token bucket), so
// the SDK's retries on throttling are exercised for real.
//
// It keeps only what those calls need: services of any name exist, ACTIVE,
// on the ECS controller, each with one container "app".
type FakeAWS struct {
	URL string

	mu        sync.Mutex
	current   map[string]string         // service key → task definition ARN
	defs      map[string]map[string]any // task definition ARN → definition
	revision  map[string]int            // family → last revision
	bucket    float64                   // RegisterTaskDefinition tokens
	burst     float64
	refill    float64 // tokens per second
	last      time.Time
	throttled int
}

// StartFakeAWS serves until the test ends. RegisterTaskDefinition allows a
// burst of 20 and then one per second, ECS's documented rate.
func StartFakeAWS(t testing.TB) *FakeAWS {
	t.Helper()
	f := &FakeAWS{current: map[string]string{}, defs: map[string]map[string]any{}, revision: map[string]int{},
		burst: 20, bucket: 20, refill: 1, last: time.Now()}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// RegisterRate sets RegisterTaskDefinition's burst and sustained rate.
func (f *FakeAWS) RegisterRate(burst int, perSecond float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.burst, f.bucket, f.refill, f.last = float64(burst), float64(burst), perSecond, time.Now()
}

// Throttled is how many RegisterTaskDefinition calls were refused so far.
func (f *FakeAWS) Throttled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.throttled
}

// Running is the task definition a service runs.
func (f *FakeAWS) Running(cluster, service string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.currentLocked(cluster, service)
}

func (f *FakeAWS) serve(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &in)
	op := operation(r.Header.Get("X-Amz-Target"))
	f.mu.Lock()
	out, status := f.answer(op, in)
	f.mu.Unlock()
	if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_") {
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	} else {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

const fakeArnPrefix = "arn:aws:ecs:" + Region + ":" + Account + ":"

func (f *FakeAWS) currentLocked(cluster, service string) string {
	key := cluster + "/" + service
	if arn, ok := f.current[key]; ok {
		return arn
	}
	arn := f.registerLocked(map[string]any{"family": service,
		"containerDefinitions": []any{map[string]any{"name": "app", "image": "fake/" + service + ":v0", "essential": true}}})
	f.current[key] = arn
	return arn
}

func (f *FakeAWS) registerLocked(def map[string]any) string {
	family, _ := def["family"].(string)
	f.revision[family]++
	arn := fmt.Sprintf("%stask-definition/%s:%d", fakeArnPrefix, family, f.revision[family])
	stored := map[string]any{}
	for k, v := range def {
		if k != "tags" {
			stored[k] = v
		}
	}
	stored["taskDefinitionArn"], stored["revision"], stored["status"] = arn, f.revision[family], "ACTIVE"
	f.defs[arn] = stored
	return arn
}

func (f *FakeAWS) service(cluster, name string) map[string]any {
	td := f.currentLocked(cluster, name)
	return map[string]any{
		"serviceName": name, "serviceArn": fakeArnPrefix + "service/" + cluster + "/" + name,
		"clusterArn": fakeArnPrefix + "cluster/" + cluster, "status": "ACTIVE", "desiredCount": 2,
		"taskDefinition": td, "deploymentController": map[string]any{"type": "ECS"},
		"deployments": []any{map[string]any{"id": "ecs-svc/" + fmt.Sprint(len(f.defs)), "status": "PRIMARY", "taskDefinition": td}},
	}
}

func (f *FakeAWS) answer(op string, in map[string]any) (any, int) {
	str := func(k string) string { s, _ := in[k].(string); return s }
	switch op {
	case "UpdateItem", "TransactWriteItems", "PutItem", "DeleteItem":
		return map[string]any{}, http.StatusOK
	case "GetItem":
		return map[string]any{}, http.StatusOK
	case "DescribeServices":
		var services []any
		names, _ := in["services"].([]any)
		for _, n := range names {
			services = append(services, f.service(str("cluster"), n.(string)))
		}
		return map[string]any{"services": services, "failures": []any{}}, http.StatusOK
	case "DescribeTaskDefinition":
		def, ok := f.defs[str("taskDefinition")]
		if !ok {
			return map[string]any{"__type": "ClientException", "message": "Unable to describe task definition."}, http.StatusBadRequest
		}
		return map[string]any{"taskDefinition": def, "tags": []any{}}, http.StatusOK
	case "RegisterTaskDefinition":
		now := time.Now()
		f.bucket = min(f.burst, f.bucket+now.Sub(f.last).Seconds()*f.refill)
		f.last = now
		if f.bucket < 1 {
			f.throttled++
			return map[string]any{"__type": "ThrottlingException", "message": "Rate exceeded"}, http.StatusBadRequest
		}
		f.bucket--
		arn := f.registerLocked(in)
		return map[string]any{"taskDefinition": f.defs[arn], "tags": in["tags"]}, http.StatusOK
	case "UpdateService":
		cluster, name := str("cluster"), str("service")
		f.current[cluster+"/"+name] = str("taskDefinition")
		return map[string]any{"service": f.service(cluster, name)}, http.StatusOK
	}
	return map[string]any{"__type": "UnknownOperationException", "message": "FakeAWS does not answer " + op}, http.StatusBadRequest
}
