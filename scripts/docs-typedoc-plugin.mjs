// A TypeDoc plugin for `pnpm docs:api` (typedoc.json):
// - names each package's module by its npm name (`@fluxion/tensor`) instead of the path TypeDoc
//   derives from its entry point (`tensor/src`);
// - keeps "Defined in packages/…/file.ts:line" as plain text: the repository has no canonical
//   remote to link to, and a relative link would break between pages of different depths.
import { Converter, ReflectionKind } from 'typedoc';

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    for (const mod of context.project.getChildrenByKind(ReflectionKind.Module)) {
      const match = /^([\w-]+)\/src$/.exec(mod.name);
      if (match) mod.name = `@fluxion/${match[1]}`;
    }
  });
  app.converter.on(Converter.EVENT_RESOLVE_END, (context) => {
    for (const reflection of Object.values(context.project.reflections)) {
      for (const source of reflection.sources ?? []) source.url = undefined;
      const signatures = 'signatures' in reflection ? (reflection.signatures ?? []) : [];
      for (const signature of signatures)
        for (const source of signature.sources ?? []) source.url = undefined;
    }
  });
}
