import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["node_modules/", "bin/", "scratch/"] },
    js.configs.recommended,
    ...tseslint.configs.recommended,
    {
        rules: {
            // Pulumi resources are declared for their side effect; `new X(...)` alone is the idiom.
            "no-new": "off",
        },
    },
);
