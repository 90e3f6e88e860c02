#!/usr/bin/env node
process.env.OCLIF_SKIP_NEW_VERSION_CHECK ??= 'true';

import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
