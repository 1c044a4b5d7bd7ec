module github.com/ecr-autodeploy/ecr-autodeploy

go 1.26.8

require (
	github.com/Masterminds/semver/v3 v3.5.0
	github.com/google/go-cmp v0.7.0
	gopkg.in/yaml.v3 v3.0.1
)
