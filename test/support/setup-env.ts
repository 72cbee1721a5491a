// Tests never read the developer's own environment for Kapija settings.
process.env.LOG_LEVEL ??= 'silent';
