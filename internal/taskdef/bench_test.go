package taskdef

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func BenchmarkNextRevision(b *testing.B) {
	td := sampleTD()
	var tags []types.Tag
	for i := range 30 {
		tags = append(tags, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
	}
	set := map[string]string{TagRule: "r", TagEvent: "e", ContainerTagKey("app"): "main-1", ContainerPushedAtKey("app"): "2026-11-25T10:00:00Z"}
	repo := "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web"
	b.ReportAllocs()
	for b.Loop() {
		containers, err := ChooseContainers(td, nil, repo)
		if err != nil {
			b.Fatal(err)
		}
		merged, err := MergeTags(tags, set)
		if err != nil {
			b.Fatal(err)
		}
		_ = RegisterInput(WithImages(td, map[string]string{containers[0]: repo + ":main-1"}), merged)
	}
}
