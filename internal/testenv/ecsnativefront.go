package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
)

// ecsTargetPrefix begins the X-Amz-Target of every ECS call (JSON 1.1).
const ecsTargetPrefix = "AmazonEC2ContainerServiceV20141113."

// ECSNativeFront is an HTTP front for ECS that plays ECS-native
// deployments for the services marked native, where moto (5.2.5) has no
// service deployments and ignores deploymentConfiguration.strategy. Clients
// reach it as their ECS endpoint (AWS_ENDPOINT_URL_ECS, or as their whole
// endpoint: what is not ECS goes to moto untouched). Every call is
// forwarded to moto except:
//
//   - DescribeServices: a native service's answer gets its deployment
//     configuration (strategy, bake, canary or linear steps, hooks, alarms)
//     patched in over moto's;
//   - UpdateService of a native service with a task definition: moto
//     applies it, and the service deployment it starts is the Fake's
//     (FakeECSDeployments.UpdateService); the answer names it as
//     currentServiceDeployment, with the Fake's PRIMARY deployment first
//     (moto's become ACTIVE: moto starts no deployment of its own);
//   - ListServiceDeployments, DescribeServiceDeployments,
//     DescribeServiceRevisions, ContinueServiceDeployment and
//     StopServiceDeployment: answered by the Fake, over the wire as ECS
//     does (JSON 1.1, camelCase members, timestamps in epoch seconds);
//     the Fake's errors go back as ECS's ({"__type", "message"}; a
//     ServerException as a 500, which the SDK retries).
//
// Whoever plays ECS (a test, the demo) moves the Fake's deployments
// through their stages (Advance, Pause, TriggerAlarms, End).
type ECSNativeFront struct {
	// Fake holds the service deployments of the native services.
	Fake *FakeECSDeployments
	// URL is where the front listens, once started (StartECSNativeFront).
	URL string

	moto   *url.URL
	client *http.Client
	proxy  *httputil.ReverseProxy
	server *http.Server

	mu     sync.Mutex
	native map[string]types.DeploymentConfiguration // "cluster/service"
}

// NewECSNativeFront returns a front for the moto at motoEndpoint whose
// native services' deployments are fake's; ServeHTTP serves it.
func NewECSNativeFront(motoEndpoint string, fake *FakeECSDeployments) (*ECSNativeFront, error) {
	u, err := url.Parse(motoEndpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("testenv: moto endpoint %q: not a URL", motoEndpoint)
	}
	return &ECSNativeFront{Fake: fake, moto: u, client: &http.Client{Timeout: time.Minute},
		proxy: httputil.NewSingleHostReverseProxy(u), native: map[string]types.DeploymentConfiguration{}}, nil
}

// StartECSNativeFront starts a front on loopback; Close stops it.
func StartECSNativeFront(motoEndpoint string, fake *FakeECSDeployments) (*ECSNativeFront, error) {
	f, err := NewECSNativeFront(motoEndpoint, fake)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: listen for the ECS front: %w", err)
	}
	f.URL = "http://" + l.Addr().String()
	f.server = &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.server.Serve(l) }()
	return f, nil
}

// Close stops a started front.
func (f *ECSNativeFront) Close() error {
	if f.server == nil {
		return nil
	}
	return f.server.Close()
}

// MarkNative makes a service of moto's native: DescribeServices answers
// with cfg as its deployment configuration, and its deployments are the
// Fake's, starting from taskDefinition (the revision it runs).
func (f *ECSNativeFront) MarkNative(cluster, service string, cfg types.DeploymentConfiguration, taskDefinition string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.native[cluster+"/"+service] = cfg
	f.Fake.AddService(cluster, service, cfg, taskDefinition)
}

// nativeConfig is the deployment configuration of a native service named
// by name or ARN in a cluster named by name or ARN.
func (f *ECSNativeFront) nativeConfig(cluster, service string) (types.DeploymentConfiguration, bool) {
	if cluster == "" {
		cluster = "default"
	}
	cluster = cluster[strings.LastIndex(cluster, "/")+1:]
	if a := strings.Split(service, "/"); len(a) == 3 && strings.HasPrefix(service, "arn:") {
		cluster, service = a[1], a[2] // arn:…:service/CLUSTER/SERVICE
	}
	service = service[strings.LastIndex(service, "/")+1:]
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg, ok := f.native[cluster+"/"+service]
	return cfg, ok
}

// ServeHTTP answers one call, as described on the type.
func (f *ECSNativeFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	if !strings.HasPrefix(target, ecsTargetPrefix) {
		f.proxy.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeECSError(w, fmt.Errorf("testenv: read the request: %w", err))
		return
	}
	ctx := r.Context()
	var out any
	switch op := strings.TrimPrefix(target, ecsTargetPrefix); op {
	case "DescribeServices":
		f.describeServices(w, r, body)
		return
	case "UpdateService":
		f.updateService(w, r, body)
		return
	case "ListServiceDeployments":
		var in listServiceDeploymentsWire
		if err = json.Unmarshal(body, &in); err == nil {
			out, err = f.Fake.ListServiceDeployments(ctx, in.input())
		}
	case "DescribeServiceDeployments":
		var in ecs.DescribeServiceDeploymentsInput
		if err = json.Unmarshal(body, &in); err == nil {
			out, err = f.Fake.DescribeServiceDeployments(ctx, &in)
		}
	case "DescribeServiceRevisions":
		var in ecs.DescribeServiceRevisionsInput
		if err = json.Unmarshal(body, &in); err == nil {
			out, err = f.Fake.DescribeServiceRevisions(ctx, &in)
		}
	case "ContinueServiceDeployment":
		var in ecs.ContinueServiceDeploymentInput
		if err = json.Unmarshal(body, &in); err == nil {
			out, err = f.Fake.ContinueServiceDeployment(ctx, &in)
		}
	case "StopServiceDeployment":
		var in ecs.StopServiceDeploymentInput
		if err = json.Unmarshal(body, &in); err == nil {
			out, err = f.Fake.StopServiceDeployment(ctx, &in)
		}
	default:
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.proxy.ServeHTTP(w, r)
		return
	}
	if err != nil {
		writeECSError(w, err)
		return
	}
	writeECS(w, http.StatusOK, Wire(out))
}

// listServiceDeploymentsWire is ListServiceDeployments's request on the
// wire: createdAt's bounds are epoch seconds, which encoding/json does not
// read into the SDK's time.Time.
type listServiceDeploymentsWire struct {
	Cluster    string   `json:"cluster"`
	Service    string   `json:"service"`
	Status     []string `json:"status"`
	NextToken  *string  `json:"nextToken"`
	MaxResults *int32   `json:"maxResults"`
	CreatedAt  *struct {
		After  *float64 `json:"after"`
		Before *float64 `json:"before"`
	} `json:"createdAt"`
}

func (l listServiceDeploymentsWire) input() *ecs.ListServiceDeploymentsInput {
	in := &ecs.ListServiceDeploymentsInput{Cluster: aws.String(l.Cluster), Service: aws.String(l.Service),
		NextToken: l.NextToken, MaxResults: l.MaxResults}
	for _, s := range l.Status {
		in.Status = append(in.Status, types.ServiceDeploymentStatus(s))
	}
	if c := l.CreatedAt; c != nil {
		in.CreatedAt = &types.CreatedAt{After: epoch(c.After), Before: epoch(c.Before)}
	}
	return in
}

func epoch(s *float64) *time.Time {
	if s == nil {
		return nil
	}
	sec, frac := math.Modf(*s)
	return aws.Time(time.Unix(int64(sec), int64(frac*1e9)).UTC())
}

// describeServices forwards the call to moto and patches each native
// service's deployment configuration into its answer.
func (f *ECSNativeFront) describeServices(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Cluster string `json:"cluster"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeECSError(w, fmt.Errorf("testenv: DescribeServices request: %w", err))
		return
	}
	f.forwardPatched(w, r, body, func(answer map[string]any) error {
		services, _ := answer["services"].([]any)
		for _, s := range services {
			svc, _ := s.(map[string]any)
			name, _ := svc["serviceArn"].(string)
			if cfg, ok := f.nativeConfig(in.Cluster, name); ok {
				svc["deploymentConfiguration"] = mergeWire(svc["deploymentConfiguration"], Wire(cfg))
			}
		}
		return nil
	})
}

// updateService forwards the call to moto and, for a native service given
// a task definition, starts the Fake's service deployment of it and names
// that in the answer. A Fake that fails (FailNext, LoseNext) fails the call
// after moto applied it: a retry sends moto the same task definition again.
func (f *ECSNativeFront) updateService(w http.ResponseWriter, r *http.Request, body []byte) {
	var in struct {
		Cluster        string `json:"cluster"`
		Service        string `json:"service"`
		TaskDefinition string `json:"taskDefinition"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeECSError(w, fmt.Errorf("testenv: UpdateService request: %w", err))
		return
	}
	cfg, native := f.nativeConfig(in.Cluster, in.Service)
	if !native || in.TaskDefinition == "" {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.proxy.ServeHTTP(w, r)
		return
	}
	f.forwardPatched(w, r, body, func(answer map[string]any) error {
		started, err := f.Fake.UpdateService(r.Context(), &ecs.UpdateServiceInput{Cluster: aws.String(in.Cluster),
			Service: aws.String(in.Service), TaskDefinition: aws.String(in.TaskDefinition)})
		if err != nil {
			return err
		}
		svc, _ := answer["service"].(map[string]any)
		if svc == nil {
			return errors.New("testenv: moto's UpdateService answer has no service")
		}
		svc["currentServiceDeployment"] = aws.ToString(started.Service.CurrentServiceDeployment)
		svc["deploymentConfiguration"] = mergeWire(svc["deploymentConfiguration"], Wire(cfg))
		deployments := []any{}
		for _, d := range started.Service.Deployments {
			deployments = append(deployments, Wire(d))
		}
		old, _ := svc["deployments"].([]any)
		for _, d := range old {
			if m, ok := d.(map[string]any); ok && m["status"] == "PRIMARY" {
				m["status"] = "ACTIVE"
			}
			deployments = append(deployments, d)
		}
		svc["deployments"] = deployments
		return nil
	})
}

// forwardPatched sends the call to moto, lets patch change a successful
// answer, and writes it; moto's errors go back as they are.
func (f *ECSNativeFront) forwardPatched(w http.ResponseWriter, r *http.Request, body []byte, patch func(map[string]any) error) {
	u := *f.moto
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		writeECSError(w, fmt.Errorf("testenv: forward to moto: %w", err))
		return
	}
	req.Header = r.Header.Clone()
	resp, err := f.client.Do(req)
	if err != nil {
		writeECSError(w, fmt.Errorf("testenv: forward to moto: %w", err))
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		writeECSError(w, fmt.Errorf("testenv: read moto's answer: %w", err))
		return
	}
	if resp.StatusCode != http.StatusOK {
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(answer)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(answer, &m); err != nil {
		writeECSError(w, fmt.Errorf("testenv: moto's answer %s: %w", answer, err))
		return
	}
	if err := patch(m); err != nil {
		writeECSError(w, err)
		return
	}
	writeECS(w, http.StatusOK, m)
}

// mergeWire lays patch's members over base's (both wire maps).
func mergeWire(base, patch any) any {
	b, _ := base.(map[string]any)
	p, _ := patch.(map[string]any)
	out := map[string]any{}
	for k, v := range b {
		out[k] = v
	}
	for k, v := range p {
		out[k] = v
	}
	return out
}

func writeECS(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"__type":"ServerException","message":"testenv: encode the answer"}`)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("testenv-%d", time.Now().UnixNano()))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// writeECSError answers err as ECS answers an error: its code in __type,
// 400 for a client's fault, 500 for a server's (the SDK retries those).
func writeECSError(w http.ResponseWriter, err error) {
	code, status := "ServerException", http.StatusInternalServerError
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
		if apiErr.ErrorFault() != smithy.FaultServer {
			status = http.StatusBadRequest
		}
		writeECS(w, status, map[string]string{"__type": code, "message": apiErr.ErrorMessage()})
		return
	}
	writeECS(w, status, map[string]string{"__type": code, "message": err.Error()})
}

// Wire is v as ECS puts it on the wire (JSON 1.1): each exported member
// under its name with the first letter lowered (the SDK's Go names are
// the API's members capitalised), nil and zero members left out,
// timestamps as epoch seconds; document members (hookDetails) are left out.
func Wire(v any) any {
	return wireValue(reflect.ValueOf(v))
}

var timeType = reflect.TypeOf(time.Time{})

func wireValue(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Invalid:
		return nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return wireValue(v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			return float64(t.UnixMilli()) / 1000
		}
		out := map[string]any{}
		for i := range v.NumField() {
			field := v.Type().Field(i)
			if !field.IsExported() || field.Type.Kind() == reflect.Interface || field.Name == "ResultMetadata" {
				continue
			}
			fv := v.Field(i)
			if fv.IsZero() {
				continue
			}
			out[lowerFirst(field.Name)] = wireValue(fv)
		}
		return out
	case reflect.Slice, reflect.Array:
		out := make([]any, 0, v.Len())
		for i := range v.Len() {
			out = append(out, wireValue(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = wireValue(v.MapIndex(k))
		}
		return out
	case reflect.String:
		return v.String()
	}
	return v.Interface()
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}
