module github.com/kompetensnav/kompetensnav/tools/kubeschemas

go 1.26.0
