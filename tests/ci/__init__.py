"""Tests of the fleet repository's pipelines in ci/ (issue 13): the GitLab pipeline's jobs run by
gitlab-ci-local in a shell, on a throwaway fleet repository."""
