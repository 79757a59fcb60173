"""TensorBoard instances for jobs log dirs, reverse-proxied behind the platform login."""
