from(bucket: "k3s_telegraf_ds/autogen")
  |> range(start: 2025-01-02T03:00:00Z, stop: 2025-01-02T04:00:00Z)
  |> filter(fn: (r) =>
    ((r._measurement == "kubernetes_pod_container" and (r._field == "cpu_usage_core_nanoseconds" or r._field == "cpu_usage_nanocores" or r._field == "memory_usage_bytes" or r._field == "memory_working_set_bytes" or r._field == "memory_rss_bytes" or r._field == "memory_page_faults" or r._field == "memory_major_page_faults" or r._field == "rootfs_used_bytes" or r._field == "logsfs_used_bytes"))
      or (r._measurement == "kubernetes_pod_network" and (r._field == "rx_bytes" or r._field == "tx_bytes" or r._field == "rx_errors" or r._field == "tx_errors"))
      or (r._measurement == "kubernetes_pod_volume" and (r._field == "used_bytes"))
      or (r._measurement == "docker_container_blkio" and r.device == "total" and (r._field == "io_service_bytes_recursive_read" or r._field == "io_service_bytes_recursive_write"))))
