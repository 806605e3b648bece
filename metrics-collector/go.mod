module github.com/podtype/podtype/metrics-collector

go 1.26.0

replace github.com/podtype/podtype/shared => ../shared
